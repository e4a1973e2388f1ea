import { cloudflareTest } from "@cloudflare/vitest-plugin"
import { buildSync } from "esbuild"
import { defineConfig } from "vitest/config"

// The replica queue's local consumer (test/workerd/standins/replica-consumer.ts): an auxiliary Worker
// runs as written, untouched by Vite, so the library's consumer it is built on is bundled here.
const replicaConsumerScript = buildSync({
  entryPoints: ["test/workerd/standins/replica-consumer.ts"],
  bundle: true,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  external: ["cloudflare:workers"],
  write: false,
  logLevel: "warning",
}).outputFiles[0]!.text

// Auth is off as in local development; test/workerd/auth.test.ts turns it on per request.
// AI and MEMORY_VECTORS (semantic memory search) are stand-ins: neither has a local simulation.
// `project` is the vitest project's name: the Worker under test runs as `vitest-plugin-runner-<project>`,
// which is where the replica consumer finds the actors it resynchronizes from.
const workerdPlugin = (project: string) =>
  cloudflareTest({
    wrangler: { configPath: "./wrangler.toml" },
    miniflare: {
      // REQUEST_LOGS off: a JSON line for each of thousands of requests buries the failures (observability.test.ts turns them on).
      bindings: {
        AUTH_MODE: "off",
        MCP_ALLOWED_HOSTS: "emberlog.test",
        MCP_SESSION_IDLE_MS: "400",
        REQUEST_LOGS: "off",
      },
      serviceBindings: {
        AI: { name: "semantic-standins", entrypoint: "StandInAi" },
        MEMORY_VECTORS: { name: "semantic-standins", entrypoint: "StandInVectorize" },
        REPLICA_CONSUMER: { name: "replica-consumer", entrypoint: "ReplicaControl" },
      },
      workers: [
        {
          name: "semantic-standins",
          modules: true,
          scriptPath: "./test/workerd/standins/semantic.js",
          compatibilityDate: "2026-11-01",
        },
        {
          name: "replica-consumer",
          modules: true,
          script: replicaConsumerScript,
          compatibilityDate: "2026-11-01",
          durableObjects: {
            EMBERLOG_ACTOR: { className: "EmberlogActor", scriptName: `vitest-plugin-runner-${project}` },
          },
          // Retries at once: a test waits for the consumer to come back, not for a retry delay.
          queueConsumers: {
            "emberlog-replica": { maxBatchSize: 100, maxBatchTimeout: 0.05, maxRetries: 100, retryDelay: 0 },
          },
        },
      ],
    },
  })

const WORKERD_ISOLATED = ["test/workerd/topics.test.ts", "test/workerd/readme-tour.test.ts"]

const workerdTest = {
  testTimeout: 60_000,
  hookTimeout: 60_000,
  // Off for workerd: with it on, a fresh worker gets a snapshot of every module of its
  // file's import graph already transformed on disk (fetchWarmModules), and
  // @cloudflare/vitest-plugin inlines all their code into ONE WebSocket message to the
  // runner. For files importing the whole app (effect, zod, the MCP SDK: ~32 MB) that
  // message passes workerd's 32 MiB WebSocket limit once earlier files have warmed the
  // graph: workerd drops it (1009 "Message is too large"), the file never loads and the
  // pool reports "Worker exited unexpectedly". Without it every module is its own message.
  fsModuleCache: false,
}

const CONFORMANCE = "test/node/durable-streams-conformance.test.ts"

/** The node projects' settings: Node clients against the Worker served by wrangler (one shared dev server). */
const nodeTest = {
  environment: "node",
  globalSetup: ["test/node/global-setup.ts"],
  // The files share nothing but servers they start and stop themselves: one worker for all
  // saves a second of start-up per file.
  isolate: false,
  testTimeout: 60_000,
  hookTimeout: 60_000,
  // A page or a wrangler dev server sharing the machine with another file answers in seconds, not ms.
  expect: { poll: { timeout: 10_000 } },
  // The Durable Streams conformance suite depends on vitest 4: run its tests on this vitest.
  server: { deps: { inline: ["@durable-streams/server-conformance-tests"] } },
}

export default defineConfig({
  test: {
    // Two at a time even on 2 cores (vitest's default there is one): node and workerd files mostly
    // wait on servers, sockets and timers, so the suite takes about 4 minutes instead of 6.
    maxWorkers: 2,
    projects: [
      {
        // Plain functions over fresh values: files need no isolation from each other.
        test: { name: "pure", environment: "node", include: ["test/pure/**/*.test.ts"], isolate: false },
      },
      {
        // The client as Node users run it, against the Worker served by wrangler.
        test: {
          ...nodeTest,
          name: "node",
          include: ["test/node/**/*.test.ts"],
          exclude: [CONFORMANCE],
        },
        resolve: { dedupe: ["vitest"] },
      },
      {
        // The Durable Streams conformance suite, last and alone (sequence.groupOrder): its TTL tests
        // give a request half a second after sleeping 1.5 s, which a machine busy with the other
        // files (a 250,000-event archive seeded in workerd) does not always keep. Ten tests at a time:
        // most of their time is spent waiting, not working.
        test: {
          ...nodeTest,
          name: "conformance",
          include: [CONFORMANCE],
          maxConcurrency: 10,
          sequence: { groupOrder: 1 },
        },
        resolve: { dedupe: ["vitest"] },
      },
      {
        plugins: [workerdPlugin("workerd")],
        test: {
          ...workerdTest,
          name: "workerd",
          include: ["test/workerd/**/*.test.ts"],
          exclude: WORKERD_ISOLATED,
          // One module graph per worker, not per file: loading the app into a fresh isolate for
          // each of 40 files cost more than their tests (transform and import were two thirds of
          // the project's time). Files share storage: each test addresses ids of its own.
          isolate: false,
        },
      },
      {
        plugins: [workerdPlugin("workerd-isolated")],
        // Files that read a whole log of the dev tenant (the counter topic, its projection over
        // every counter): with other files' counters in the same storage they would count those too.
        test: { ...workerdTest, name: "workerd-isolated", include: WORKERD_ISOLATED },
      },
    ],
  },
})

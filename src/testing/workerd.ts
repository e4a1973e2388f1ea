/**
 * The model-based runner for actors hosted in workerd (use it inside tests run by
 * `@cloudflare/vitest-plugin`). It drives an actor through the Worker's HTTP routes
 * with the user's commands interleaved with crashes, retried Idempotency-Keys, stale
 * If-Match writes and invalid bodies, using the entity's own pure decide/evolve as the
 * model. After every step: state equals the model, version equals the event count,
 * seqs are gapless from 1, retries added nothing, refused input appended nothing,
 * and verify is ok.
 *
 * The model is the entity's own decide run here, so an entity whose decide reads the
 * clock (e.g. TTLs) is better checked with `checkEntity`, which controls time.
 *
 * ```ts
 * import { SELF, env } from "cloudflare:test"
 * import { checkActor } from "emberlog/testing/workerd"
 * it("counter survives crashes", () =>
 *   checkActor({ entity: Counter, fetch: (r) => SELF.fetch(r), namespace: env.EMBERLOG_ACTOR, commands: counterCommands }))
 * ```
 */
import { abortAllDurableObjects, evictDurableObject } from "cloudflare:test"
import { Cause, Effect, Exit, type Layer } from "effect"
import fc from "fast-check"
import { canonicalJson } from "../core/hash-chain.js"
import { DEV_TENANT, actorName } from "../core/names.js"
import { DomainError, type Entity } from "../domain/entity.js"
import { type Ids, sequentialIds } from "../infra/ids.js"
import { propertyParameters } from "./parameters.js"

export interface CheckActorOptions {
  readonly entity: Entity
  /** Usually `(request) => SELF.fetch(request)`. */
  readonly fetch: (request: Request) => Promise<Response>
  /** The namespace hosting the kind, used to crash its objects. */
  readonly namespace: DurableObjectNamespace
  /** The object name the Worker gives an actor id (default: the local-development tenant's). */
  readonly objectName?: (id: string) => string
  readonly commands: fc.Arbitrary<unknown>
  readonly kind?: string
  readonly numRuns?: number
  readonly maxCommands?: number
  readonly seed?: number
  readonly baseUrl?: string
}

interface Model {
  state: unknown
  version: number
  lastKeyed: { readonly body: string; readonly key: string; readonly version: number } | undefined
}

interface Real {
  readonly url: string
  readonly id: string
  readonly options: CheckActorOptions
}

type Check = fc.AsyncCommand<Model, Real>

let runCounter = 0

const post = (real: Real, body: string, headers: Record<string, string> = {}) =>
  real.options.fetch(
    new Request(`${real.url}/commands`, {
      method: "POST",
      body,
      headers: { "content-type": "application/json", ...headers },
    }),
  )

const expectStatus = async (response: Response, status: number, what: string) => {
  const text = await response.text()
  if (response.status !== status) throw new Error(`${what}: expected ${status}, got ${response.status} ${text}`)
  return text.length > 0 ? JSON.parse(text) : undefined
}

const decideOnModel = (entity: Entity, state: unknown, command: unknown) => {
  const exit = Effect.runSyncExit(
    Effect.provide(entity.decide(state, command), sequentialIds("model-") as Layer.Layer<Ids>) as Effect.Effect<
      ReadonlyArray<unknown>,
      DomainError
    >,
  )
  if (Exit.isSuccess(exit)) return { ok: true as const, events: exit.value }
  const error = Cause.squash(exit.cause)
  if (error instanceof DomainError) return { ok: false as const, code: error.code }
  throw error
}

class Send implements Check {
  constructor(
    readonly command: unknown,
    readonly key: string | undefined,
  ) {}
  check = () => true
  async run(model: Model, real: Real) {
    const { entity } = real.options
    const body = JSON.stringify(this.command)
    const response = await post(real, body, this.key === undefined ? {} : { "Idempotency-Key": this.key })
    const decoded = entity.decodeCommand(this.command)
    if (!decoded.ok) return void (await expectStatus(response, 400, "an invalid command"))
    const internal: ReadonlyArray<string> = entity.internalCommands ?? []
    if (internal.includes(decoded.command.type))
      return void (await expectStatus(response, 400, "an internal command sent by a client"))
    const decision = decideOnModel(entity, entity.decodeState(model.state), decoded.command)
    if (!decision.ok) {
      const error = await expectStatus(response, 422, `a command the model rejects (${decision.code})`)
      if (error.error.code !== decision.code) throw new Error(`expected code ${decision.code}, got ${error.error.code}`)
      return
    }
    const result = await expectStatus(response, 200, "a command the model accepts")
    const next = decision.events.reduce(
      (state: unknown, event) => entity.evolve(state, event),
      entity.decodeState(model.state),
    )
    model.state = entity.encodeState(next)
    model.version += decision.events.length
    if (result.version !== model.version) throw new Error(`version ${result.version}, model ${model.version}`)
    if (this.key !== undefined) model.lastKeyed = { body, key: this.key, version: model.version }
  }
  toString = () => `send ${JSON.stringify(this.command)}${this.key ? ` key=${this.key}` : ""}`
}

class Retry implements Check {
  check = (model: Readonly<Model>) => model.lastKeyed !== undefined
  async run(model: Model, real: Real) {
    const { body, key, version } = model.lastKeyed!
    const result = await expectStatus(
      await post(real, body, { "Idempotency-Key": key }),
      200,
      "a retried Idempotency-Key",
    )
    if (result.version !== version)
      throw new Error(`a retry returned version ${result.version}; the first answer was ${version}`)
  }
  toString = () => "retry last keyed command"
}

class StaleWrite implements Check {
  constructor(readonly command: unknown) {}
  check = (model: Readonly<Model>) => model.version > 0
  async run(model: Model, real: Real) {
    const response = await post(real, JSON.stringify(this.command), { "If-Match": String(model.version - 1) })
    const decoded = real.options.entity.decodeCommand(this.command)
    const internal: ReadonlyArray<string> = real.options.entity.internalCommands ?? []
    await expectStatus(response, decoded.ok && !internal.includes(decoded.command.type) ? 409 : 400, "a stale If-Match")
  }
  toString = () => `stale write ${JSON.stringify(this.command)}`
}

class InvalidBody implements Check {
  constructor(readonly body: string) {}
  check = () => true
  async run(_model: Model, real: Real) {
    await expectStatus(await post(real, this.body), 400, `the invalid body ${JSON.stringify(this.body)}`)
  }
  toString = () => `invalid body ${JSON.stringify(this.body)}`
}

class Crash implements Check {
  constructor(readonly how: "evict" | "abort-all") {}
  check = () => true
  async run(_model: Model, real: Real) {
    if (this.how === "abort-all") return abortAllDurableObjects()
    // Eviction refuses an object that is not running; then there is nothing to crash.
    const kind = real.options.kind ?? real.options.entity.kind
    const name = (real.options.objectName ?? ((id: string) => actorName(DEV_TENANT, kind, id)))(real.id)
    await evictDurableObject(real.options.namespace.getByName(name)).catch(() => undefined)
  }
  toString = () => `crash (${this.how})`
}

/** The invariants that must hold after every step. */
const checkInvariants = async (model: Model, real: Real) => {
  const { fetch } = real.options
  const read = await expectStatus(await fetch(new Request(real.url)), 200, "reading the state")
  if (read.version !== model.version) throw new Error(`version ${read.version}, model ${model.version}`)
  if (canonicalJson(read.state) !== canonicalJson(model.state)) {
    throw new Error(`state ${JSON.stringify(read.state)} differs from the model ${JSON.stringify(model.state)}`)
  }
  let expected = 1
  for (let after: number | null = 0; after !== null;) {
    const page: { events: Array<{ seq: number }>; next: number | null } = await expectStatus(
      await fetch(new Request(`${real.url}/events?after=${after}&limit=1000`)),
      200,
      "reading events",
    )
    for (const event of page.events)
      if (event.seq !== expected++) throw new Error(`the log has a gap or repeat at seq ${expected - 1}`)
    after = page.next
  }
  if (expected - 1 !== model.version) throw new Error(`${expected - 1} events in the log, model has ${model.version}`)
  const verify = await expectStatus(await fetch(new Request(`${real.url}/verify`)), 200, "verify")
  if (!verify.ok) throw new Error(`verify failed at ${verify.firstBadSeq}: ${verify.reason}`)
}

const checked = (command: Check): Check => ({
  check: command.check,
  run: async (model, real) => {
    await command.run(model, real)
    await checkInvariants(model, real)
  },
  toString: () => command.toString(),
})

const invalidBodies = fc.constantFrom("", "{", "null", "[]", '"text"', '{"type":42}', '{"no":"type"}')

export const checkActor = async (options: CheckActorOptions): Promise<void> => {
  const kind = options.kind ?? options.entity.kind
  const steps = fc.commands(
    [
      fc
        .record({ command: options.commands, key: fc.option(fc.uuid(), { nil: undefined }) })
        .map(({ command, key }) => checked(new Send(command, key))),
      fc.constant(checked(new Retry())),
      options.commands.map((command) => checked(new StaleWrite(command))),
      invalidBodies.map((body) => checked(new InvalidBody(body))),
      fc.constantFrom<"evict" | "abort-all">("evict", "abort-all").map((how) => checked(new Crash(how))),
    ],
    { maxCommands: options.maxCommands ?? 25, size: "max" },
  )
  await fc.assert(
    fc.asyncProperty(steps, async (commands) => {
      const id = `model-${Date.now()}-${++runCounter}`
      const real: Real = { url: `${options.baseUrl ?? "http://emberlog.test"}/v1/${kind}/${id}`, id, options }
      const model: Model = {
        state: options.entity.encodeState(options.entity.initial),
        version: 0,
        lastKeyed: undefined,
      }
      await fc.asyncModelRun(() => ({ model, real }), commands)
    }),
    propertyParameters({ numRuns: options.numRuns ?? 20, seed: options.seed }),
  )
}

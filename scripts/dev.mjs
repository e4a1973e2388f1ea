// `npm run dev [-- wrangler flags]`: wrangler dev with emberlog's defaults for the flags the user
// did not give (wrangler refuses a flag given twice, so `npm run dev -- --port 9000` must replace
// the default rather than add to it).
import { spawn } from "node:child_process"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import "./dev-vars.mjs"

const DEFAULTS = { "--ip": "127.0.0.1", "--port": "8787", "--persist-to": ".wrangler/state" }

const given = process.argv.slice(2)
const has = (flag) => given.some((arg) => arg === flag || arg.startsWith(`${flag}=`))
const args = ["dev", ...Object.entries(DEFAULTS).flatMap(([flag, value]) => (has(flag) ? [] : [flag, value])), ...given]

// wrangler's package exports no bin path: found beside its package.json.
const wrangler = join(dirname(createRequire(import.meta.url).resolve("wrangler/package.json")), "bin", "wrangler.js")
const child = spawn(process.execPath, [wrangler, ...args], { stdio: "inherit" })
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal))
child.on("exit", (code, signal) => process.exit(code ?? (signal === null ? 0 : 1)))

/** The `emberlog` executable (bundled to dist/emberlog.mjs by `npm run build:cli`, which `npm install` runs). */
import { run } from "./main.js"

const interrupted = new AbortController()
process.once("SIGINT", () => {
  interrupted.abort()
  // A second Ctrl-C, or a command that does not stop on the first, ends the process.
  process.once("SIGINT", () => process.exit(130))
})
const code = await run(process.argv.slice(2), { out: process.stdout, err: process.stderr, env: process.env, signal: interrupted.signal })
process.stdout.write("", () => process.exit(code))

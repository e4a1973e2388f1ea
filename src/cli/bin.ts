/** The `emberlog` executable (bundled to dist/emberlog.mjs by `npm run build:cli`, which `npm install` runs). */
import { run } from "./main.js"

// A reader that stops early (`emberlog export … | head`) is not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => process.exit(error.code === "EPIPE" ? 0 : 1))

const interrupted = new AbortController()
// Only tail runs until interrupted; it stops cleanly on Ctrl-C. Every other command keeps the default (exit at once).
if (process.argv[2] === "tail") {
  process.once("SIGINT", () => {
    interrupted.abort()
    process.once("SIGINT", () => process.exit(130))
  })
}
const code = await run(process.argv.slice(2), {
  out: process.stdout,
  err: process.stderr,
  env: process.env,
  signal: interrupted.signal,
})
process.stdout.write("", () => process.exit(code))

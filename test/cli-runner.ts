// Runs the CLI in-process, as `emberlog <args>` would, and collects what it printed.
import { PassThrough, type Readable } from "node:stream"
import { run } from "../src/cli/main.js"

export interface CliResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** `stderr` may be shaped as a terminal (isTTY, columns) for the progress bar. */
export const runCli = async (
  args: ReadonlyArray<string>,
  options: { readonly stdin?: Readable; readonly stderr?: { readonly isTTY: boolean; readonly columns: number } } = {},
): Promise<CliResult> => {
  const out = new PassThrough()
  const err = Object.assign(new PassThrough(), options.stderr ?? {})
  let stdout = ""
  let stderr = ""
  out.on("data", (chunk) => (stdout += chunk))
  err.on("data", (chunk) => (stderr += chunk))
  const code = await run(args, { out, err, env: {} }, options.stdin)
  return { code, stdout, stderr }
}

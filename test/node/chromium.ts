// Debian's Chromium, as the node tests drive it with playwright-core (`.ci/run` installs it when missing).
import { existsSync } from "node:fs"
import { chromium, type Browser } from "playwright-core"

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"
// No internet here: without these, Chromium's background connections are refused by the dozen.
const CHROMIUM_FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
]

/** A headless Chromium; `extraFlags` e.g. `--ignore-certificate-errors` for wrangler's self-signed https. */
export const launchChromium = async (extraFlags: ReadonlyArray<string> = []): Promise<Browser> => {
  if (!existsSync(CHROMIUM))
    throw new Error(`No Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`)
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...extraFlags, ...CHROMIUM_FLAGS] })
}

// Creates .dev.vars from .dev.vars.example when missing, so `npm run dev` works on a fresh clone.
import { copyFileSync, existsSync } from "node:fs"

if (!existsSync(".dev.vars")) {
  copyFileSync(".dev.vars.example", ".dev.vars")
  console.log("emberlog: created .dev.vars from .dev.vars.example (AUTH_MODE=off for local development)")
}

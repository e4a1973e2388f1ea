// The session entity's decide, run as the host runs it: the command decoded, a Caller and a clock at `now`.
import { Clock, Effect } from "effect"
import { Caller, type CallerShape } from "../../src/domain/caller.js"
import { Session, type SessionState } from "../../src/kinds/session/entity.js"
import { clockAt } from "../../src/testing/clock.js"

export const decideSession = (state: SessionState, input: unknown, caller: CallerShape, now: number) => {
  const decoded = Session.decodeCommand(input)
  if (!decoded.ok) throw new Error(`the arbitrary made an invalid command: ${decoded.error.message}`)
  return Effect.runSyncExit(
    Session.decide(state, decoded.command).pipe(
      Effect.provideService(Caller, caller),
      Effect.provideService(
        Clock.Clock,
        clockAt(() => now),
      ),
    ),
  )
}

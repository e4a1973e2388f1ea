/**
 * The one owner of a Durable Object's alarm. An object has a single alarm, and several
 * parts want to be woken: the outbox (deliveries), the entity's timer, socket expiries,
 * capabilities (sweeps, embeddings, reactions), the replica and the archive. Each is a task that says when it is next
 * due; anyone may also ask for a wake-up at a time. The alarm is set for the earliest of
 * all, and a later ask never postpones an earlier one. When it rings, every task runs in
 * turn, each on its own: one that throws is logged and the others still run; then the
 * alarm is set again from what is still due.
 *
 * An alarm is storage, and reads create nothing: while the object has no storage a timer
 * stands in for it (an object evicted before it fires is woken by its next write, which
 * sets the real alarm).
 */

export interface AlarmTask {
  readonly name: string
  /** When the task next needs to run (ms epoch); undefined: nothing to do. Asked when rescheduling. */
  readonly dueAt?: () => number | undefined
  /** Does the task's due work (tasks decide themselves what is due at `now`). */
  readonly run: (now: number) => void | Promise<void>
}

/** The platform's side: the object's alarm, whether it has storage, and a timer. */
export interface AlarmPort {
  readonly getAlarm: () => Promise<number | null>
  readonly setAlarm: (at: number) => Promise<void>
  readonly hasStorage: () => boolean
  readonly setTimer: (run: () => void, delayMs: number) => void
  readonly now: () => number
}

export class AlarmOwner {
  /** When the one alarm is set for, as far as this instance knows (null: none). */
  private alarmAt: number | null = null
  /** When the timer standing in for the alarm fires (null: none). */
  private standInAt: number | null = null
  /** Wake-ups asked for and not yet rung, earliest first (they are few). */
  private asks: Array<number> = []

  constructor(
    private readonly port: AlarmPort,
    private readonly tasks: ReadonlyArray<AlarmTask>,
  ) {}

  /** Reads the alarm already set (once, at recovery), so an ask for later does not move it. */
  async load(): Promise<void> {
    this.alarmAt = await this.port.getAlarm()
  }

  /** Asks to be woken no later than `at`. */
  async wakeAt(at: number): Promise<void> {
    if (!Number.isFinite(at)) return
    if (!this.asks.includes(at)) {
      this.asks.push(at)
      this.asks.sort((a, b) => a - b)
    }
    await this.arm(at)
  }

  /**
   * Sets the alarm no later than `at` for work a task's `dueAt` reports again when rescheduling
   * (the outbox after a commit, the entity's timer): unlike `wakeAt`, nothing is remembered, so
   * the command path pays for no bookkeeping.
   */
  async due(at: number): Promise<void> {
    if (Number.isFinite(at)) await this.arm(at)
  }

  /** When the alarm (or the timer standing in) will ring next, as far as this instance knows. */
  get nextAt(): number | null {
    return this.alarmAt ?? this.standInAt
  }

  /** Sets the alarm for the earliest of every task's due time and every ask still open. */
  async reschedule(): Promise<void> {
    const due = [this.asks[0], ...this.tasks.map((task) => task.dueAt?.())].filter(
      (at): at is number => at !== undefined,
    )
    if (due.length > 0) await this.arm(Math.min(...due))
  }

  /** The alarm rang: runs every task, each on its own, then sets the alarm again. */
  async ring(): Promise<void> {
    this.alarmAt = null
    const now = this.port.now()
    this.asks = this.asks.filter((at) => at > now)
    for (const task of this.tasks) {
      try {
        await task.run(now)
      } catch (error) {
        console.error(`emberlog: the alarm's ${task.name} step failed; the others ran`, error)
      }
    }
    await this.reschedule()
  }

  private async arm(at: number): Promise<void> {
    // The cheap check first: a set alarm implies storage, and asking about storage is a query
    // (a commit arms twice for a kind with a timer).
    if (this.alarmAt !== null && this.alarmAt <= at) return
    if (!this.port.hasStorage()) return this.standIn(at)
    this.alarmAt = at
    await this.port.setAlarm(at)
  }

  private standIn(at: number): void {
    if (this.standInAt !== null && this.standInAt <= at) return
    this.standInAt = at
    this.port.setTimer(
      () => {
        this.standInAt = null
        void this.ring()
      },
      Math.max(0, at - this.port.now()),
    )
  }
}

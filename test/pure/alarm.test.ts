// The one alarm owner (src/actors/alarm.ts): the earliest of every ask and every task's due time
// wins, a later ask never postpones an earlier one, and a step that throws never holds the others up.
import { describe, expect, it } from "vitest"
import { AlarmOwner, type AlarmPort, type AlarmTask } from "../../src/actors/alarm.js"

const port = (storage = true) => {
  const set: Array<number> = []
  const timers: Array<{ run: () => void; delayMs: number }> = []
  let alarm: number | null = null
  let now = 1_000
  const value: AlarmPort = {
    getAlarm: async () => alarm,
    setAlarm: async (at) => {
      alarm = at
      set.push(at)
    },
    hasStorage: () => storage,
    setTimer: (run, delayMs) => void timers.push({ run, delayMs }),
    now: () => now,
  }
  return { port: value, set, timers, alarm: () => alarm, advance: (to: number) => void (now = to) }
}

describe("the alarm owner", () => {
  it("sets the alarm for the earliest of several asks; a later ask never postpones it", async () => {
    const p = port()
    const owner = new AlarmOwner(p.port, [])
    await owner.wakeAt(5_000)
    await owner.wakeAt(3_000)
    await owner.wakeAt(9_000)
    await owner.wakeAt(4_000)
    expect(p.alarm()).toBe(3_000)
    expect(p.set).toEqual([5_000, 3_000])
  })

  it("merges asks with the tasks' due times, and keeps a later ask for after the earlier one rang", async () => {
    const p = port()
    let timerDue: number | undefined = 2_500
    const ran: Array<string> = []
    const timer: AlarmTask = { name: "timer", dueAt: () => timerDue, run: () => void ran.push("timer") }
    const owner = new AlarmOwner(p.port, [timer])
    await owner.wakeAt(4_000)
    await owner.reschedule()
    expect(p.alarm()).toBe(2_500)
    p.advance(2_500)
    timerDue = undefined
    await owner.ring()
    expect(ran).toEqual(["timer"])
    // The ask for 4 000 was not due yet: the alarm is set for it now.
    expect(p.alarm()).toBe(4_000)
  })

  it("does not move an alarm already set earlier (read at recovery)", async () => {
    const p = port()
    await p.port.setAlarm(1_500)
    const owner = new AlarmOwner(p.port, [])
    await owner.load()
    await owner.wakeAt(2_000)
    expect(p.set).toEqual([1_500])
  })

  it("runs every step when one throws, then reschedules", async () => {
    const p = port()
    const ran: Array<string> = []
    const owner = new AlarmOwner(p.port, [
      { name: "outbox", run: () => void ran.push("outbox") },
      {
        name: "failing",
        run: async () => {
          ran.push("failing")
          throw new Error("boom")
        },
      },
      { name: "capability", dueAt: () => 7_000, run: () => void ran.push("capability") },
    ])
    const errors = console.error
    console.error = () => undefined
    try {
      await owner.ring()
    } finally {
      console.error = errors
    }
    expect(ran).toEqual(["outbox", "failing", "capability"])
    expect(p.alarm()).toBe(7_000)
  })

  it("stands in with a timer while the object has no storage (an alarm is storage)", async () => {
    const p = port(false)
    const ran: Array<number> = []
    const owner = new AlarmOwner(p.port, [{ name: "sockets", run: (now) => void ran.push(now) }])
    await owner.wakeAt(1_400)
    await owner.wakeAt(1_900)
    expect(p.set).toEqual([])
    expect(p.timers.map((timer) => timer.delayMs)).toEqual([400])
    p.advance(1_400)
    p.timers[0]!.run()
    await new Promise((resolve) => setTimeout(resolve, 0))
    expect(ran).toEqual([1_400])
    // The later ask is still open: a timer for it.
    expect(p.timers.map((timer) => timer.delayMs)).toEqual([400, 500])
  })
})

describe("work a task reports itself", () => {
  it("sets the alarm earlier without being remembered once the task has nothing left", async () => {
    const p = port()
    let pending = true
    const owner = new AlarmOwner(p.port, [
      { name: "outbox", dueAt: () => (pending ? 2_000 : undefined), run: () => void (pending = false) },
    ])
    await owner.due(2_000)
    await owner.due(3_000)
    expect(p.set).toEqual([2_000])
    p.advance(2_000)
    await owner.ring()
    // Delivered: nothing asks for another alarm.
    expect(owner.nextAt).toBeNull()
  })

  it("asks nothing about storage when the alarm already set is no later (a set alarm implies storage)", async () => {
    const p = port()
    let storageQueries = 0
    const owner = new AlarmOwner({ ...p.port, hasStorage: () => (storageQueries++, true) }, [])
    await owner.due(2_000)
    expect(storageQueries).toBe(1)
    // A commit of a kind with a timer arms twice (the outbox, then the timer): neither queries storage again.
    await owner.due(2_025)
    await owner.due(5_000)
    await owner.wakeAt(3_000)
    expect(storageQueries).toBe(1)
    expect(p.set).toEqual([2_000])
    // An earlier ask still sets the alarm (and so checks storage).
    await owner.due(1_500)
    expect(p.set).toEqual([2_000, 1_500])
  })
})

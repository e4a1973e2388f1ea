// A third-party reconnecting client (partysocket) against wrangler dev, resuming as the README says.
import ReconnectingWebSocket from "partysocket/ws"
import { expect, it } from "vitest"
import { WS_MAX_UNCONFIRMED } from "../../src/actors/subscribers.js"
import { sharedWorkerBase } from "./dev-worker.js"

const base = sharedWorkerBase()

const POST_CHARS = 200 * 1024

it("partysocket with a URL provider setting `after` resumes across a server-side close, no gap or repeat", async () => {
  const room = `party-${Date.now()}`
  const wsBase = base.replace(/^http/, "ws")
  // A member, so the room exists for /broadcast; then a backlog larger than one socket's cap.
  const member = new WebSocket(`${wsBase}/ws?room=${room}&name=writer`)
  // Members confirm what they read, or the room closes them at the cap as it does other sockets.
  member.addEventListener("message", () => member.send(JSON.stringify({ type: "ack" })))
  await new Promise((resolve, reject) => {
    member.addEventListener("open", resolve)
    member.addEventListener("error", reject)
  })
  const post = async (i: number) => {
    const body = JSON.stringify({ room, type: "blob", payload: `${i}:${"x".repeat(POST_CHARS)}` })
    const headers = { "content-type": "application/json" }
    expect((await fetch(`${base}/broadcast`, { method: "POST", body, headers })).status).toBe(200)
  }
  const backlog = Math.ceil(WS_MAX_UNCONFIRMED / POST_CHARS) + 5
  for (let i = 0; i < backlog; i++) await post(i)

  // What the README shows: the URL is asked for on every (re)connection, with the last seq seen.
  let lastSeq = 0
  const seqs: Array<number> = []
  const closes: Array<number> = []
  const socket = new ReconnectingWebSocket(() => `${wsBase}/v1/room/${room}/ws?after=${lastSeq}`, [], {
    minReconnectionDelay: 10,
    maxReconnectionDelay: 100,
  })
  socket.addEventListener("close", (event) => closes.push(event.code))
  let wake: () => void = () => undefined
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(String(event.data))
    if (frame.type !== "event") return
    seqs.push(frame.event.seq)
    lastSeq = frame.event.seq
    wake()
  })
  const until = (seq: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`stopped at ${lastSeq}, waiting for ${seq}`)), 30_000)
      wake = () => lastSeq >= seq && (clearTimeout(timer), resolve())
      wake()
    })
  const head = backlog + 1 // the member's Joined, then the posts
  await until(head)
  // The server closed the first connection at its cap; partysocket reconnected from lastSeq.
  expect(closes).toContain(4100)
  for (let i = 0; i < 3; i++) await post(backlog + i)
  await until(head + 3)
  expect(seqs).toEqual(Array.from({ length: head + 3 }, (_, i) => i + 1))
  socket.close()
  member.close()
}, 60_000)

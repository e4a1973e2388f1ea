// What the local runtime holds: the benchmarks run from Node (bench/peers.mjs, bench/scale.mjs) start
// wrangler's workerd processes under their own, and read its memory from `ps`.
import { execFileSync } from "node:child_process"

/** Resident memory (KB) of the workerd processes descending from this Node process. */
export const workerdRssKb = () => {
  const rows = execFileSync("ps", ["-eo", "pid=,ppid=,rss=,comm="], { encoding: "utf8" })
    .trim()
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .map(([pid, ppid, rss, comm]) => ({ pid: Number(pid), ppid: Number(ppid), rss: Number(rss), comm }))
  const mine = new Set([process.pid])
  for (let grew = true; grew;) {
    grew = false
    for (const row of rows) if (mine.has(row.ppid) && !mine.has(row.pid)) (mine.add(row.pid), (grew = true))
  }
  return rows.filter((row) => mine.has(row.pid) && row.comm.includes("workerd")).reduce((sum, row) => sum + row.rss, 0)
}

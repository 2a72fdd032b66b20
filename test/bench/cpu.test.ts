import { createHash } from 'node:crypto'
import t from 'tap'
import { cpuSeconds, cpuTimes } from '../../bench/cpu.js'

t.test('user and system CPU time are read apart, and add up to cpuSeconds', async (t) => {
  const before = cpuTimes(process.pid)
  // Work in this process's own code, long enough for the kernel's clock (10 ms ticks).
  const started = process.cpuUsage()
  let digest = Buffer.alloc(32)
  while (process.cpuUsage(started).user < 200_000) digest = createHash('sha256').update(digest).digest()
  const after = cpuTimes(process.pid)
  t.ok(after.user - before.user >= 0.1, `user time grew by ${after.user - before.user} s`)
  t.ok(after.system >= 0, 'system time is a number of seconds')
  const total = cpuSeconds(process.pid)
  t.ok(total >= after.user + after.system, 'cpuSeconds is user + system')
  t.ok(total - (after.user + after.system) < 0.1, 'and nothing more')
})

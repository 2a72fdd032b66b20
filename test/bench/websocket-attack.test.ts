import t from 'tap'
import { runBenchScript } from '../helpers/bench-script.js'

const MiB = 1024 * 1024

interface AttackResult {
  readonly attack: string
  readonly judged: boolean
  readonly sockets: number
  readonly peakAboveBaseline: number
  readonly liveAboveBaseline?: number
  readonly ends: Record<string, number>
}

// Five attacks, each driven until the gateway holds its bound: about 50 s
// on a quiet 2-vCPU machine, over 120 s when other test files load it.
// The work is fixed, so only the wait for it grows.
t.setTimeout(300_000)

// The gateway's resident set is read from /proc by the bench, in a process
// of its own, so the test process's memory plays no part. With the bounds
// lifted (`--unbounded`, ws's defaults) the same attacks take it 390, 760
// and 400 MiB above its baseline; with them, a few tens. The floods of
// 1-byte messages are held to the bound by what the gateway has live after
// a full collection (their peak is V8's garbage): 226 and 101 MiB while
// flow control counted bytes only, some 10 with its bound on frames.
t.test("the red team's WebSocket attacks keep the gateway within 64 MiB of its baseline", async (t) => {
  const { code, output } = await runBenchScript('websocket-attack.ts', ['--red-team'])
  if (code === 0) t.pass('the bench exits 0: every attack within its bound')
  else t.fail(`the bench exits ${code}\n${output.slice(-3_000)}`)
  const results = output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as AttackResult)
  t.same(
    results.map((r) => [r.sockets, Object.keys(r.ends)]),
    [
      [4, ['1009']],
      [8, ['1009']],
      [8, ['refused 502']],
      [2, ['open']],
      [4, ['open']],
    ],
    'oversized messages are closed with 1009; an upstream that compresses unasked is refused; floods of 1-byte messages are held, stalled',
  )
  for (const r of results) {
    t.ok(r.judged)
    const [what, bytes] =
      r.liveAboveBaseline === undefined ? ['peak', r.peakAboveBaseline] : ['live', r.liveAboveBaseline]
    t.ok(bytes <= 64 * MiB, `${r.attack}: ${what} ${(bytes / MiB).toFixed(1)} MiB`)
  }
})

import t from 'tap'
import type { TracingResult } from '../../bench/tracing.js'
import { runBenchScript } from '../helpers/bench-script.js'

/** The JSON object the tracing bench prints last on stdout. */
function resultOf(stdout: string): TracingResult {
  return JSON.parse(stdout.slice(stdout.lastIndexOf('\n{') + 1)) as TracingResult
}

// Speed is not asserted: what must hold at any speed is that `--together`
// puts the three peers on the machine at once, and that without it they
// take turns, each answering every request of its load.
t.setTimeout(240_000)
for (const together of [true, false]) {
  t.test(
    `bench/tracing.ts ${together ? 'loads its peers together' : 'loads one peer at a time'}`,
    async (t) => {
      const { code, stdout, output } = await runBenchScript('tracing.ts', [
        '--rounds',
        '1',
        '--duration',
        '2',
        '--warmup',
        '0',
        '--connections',
        '4',
        ...(together ? ['--together'] : []),
      ])
      t.equal(code, 0, `the bench exits 0\n${output.slice(-3_000)}`)
      const result = resultOf(stdout)
      t.same(result.loadedTogether, [together], 'the measured loads overlapped, or did not')
      t.equal(result.failures, 0, 'every peer answered every request')
      for (const kind of ['before', 'off', 'on'] as const) {
        t.ok(result.cpuMicrosPerRequest[kind] > 0, `${kind}: CPU per request measured`)
      }
      t.ok(
        result.spansPerRequest > 0 && result.spansPerRequest < 2,
        'the traced peer exported a sampled share',
      )
    },
  )
}

t.test('bench/span-cost.ts prints the SDK cost of each case', async (t) => {
  const { code, stdout, output } = await runBenchScript('span-cost.ts', ['--traces', '2000'])
  t.equal(code, 0, `the script exits 0\n${output.slice(-3_000)}`)
  const lines = stdout.trim().split('\n')
  t.equal(lines.length, 5, 'one line per case')
  const exported = lines.map((line) => Number(/([\d.]+) spans exported per trace/.exec(line)?.[1]))
  t.same(exported.slice(0, 4), [0, 3, 3, 3], 'no span when unsampled, all three when sampled')
  t.ok(exported[4]! > 0 && exported[4]! < 3, 'a share of them at 10 %')
  for (const line of lines) t.match(line, /[\d.]+ µs per trace/, 'CPU per trace measured')
})

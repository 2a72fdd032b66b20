import t from 'tap'
import { runBenchScript } from '../helpers/bench-script.js'

// `npm run bench:dpop` is not a test; a few hundred requests through it keep
// it from rotting. Speed is not asserted: only that both routes answered
// every request and the run reports its ratios.
t.test('the DPoP bench runs end to end and reports both ratios', async (t) => {
  const { code, stdout, output } = await runBenchScript('dpop.ts', ['--smoke'])
  t.equal(code, 0, `the bench exits 0\n${output.slice(-3_000)}`)
  const report = JSON.parse(stdout.slice(stdout.indexOf('{'))) as Record<string, unknown>
  t.type(report.ratio, 'number')
  t.type(report.cpuRatio, 'number')
  t.ok((report.dpopRequestsPerSecond as number) > 0 && (report.bearerRequestsPerSecond as number) > 0)
})

import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import t from 'tap'
import { runLoad } from '../../bench/load.js'

// Node may report a child's exit before it has read the child's last
// output from the pipe (child_process: "stdio streams might still be
// open"); under load that lost wrk's whole report once, and the bench
// with it. A stand-in `wrk` on PATH makes the order certain: it exits at
// once, and the report comes from a process it left behind, which holds
// the pipe open. A reader that stops at the exit sees nothing; one that
// reads to the end of the output sees the report.
const REPORT = `Running 1s test @ http://127.0.0.1:1/api/items
  Latency Distribution
     50%  812.00us
     75%    1.02ms
     90%    1.40ms
     99%    3.30ms
  12345 requests in 1.00s, 2.40MB read
  Non-2xx or 3xx responses: 2
Requests/sec:  12345.00
Transfer/sec:      2.40MB
`

t.test('the wrk report is read to its end, not to the process exit', async (t) => {
  const bin = mkdtempSync(join(tmpdir(), 'gatehouse-fake-wrk-'))
  t.teardown(() => rmSync(bin, { recursive: true, force: true }))
  const report = join(bin, 'report.txt')
  writeFileSync(report, REPORT)
  const wrk = join(bin, 'wrk')
  writeFileSync(wrk, `#!/bin/sh\n(sleep 0.2; cat '${report}') &\nexit 0\n`)
  chmodSync(wrk, 0o755)
  const path = process.env.PATH
  process.env.PATH = `${bin}${delimiter}${path ?? ''}`
  t.teardown(() => {
    process.env.PATH = path
  })
  for (let run = 0; run < 2; run++) {
    const result = await runLoad('wrk', {
      url: 'http://127.0.0.1:1/api/items',
      headers: {},
      connections: 1,
      duration: 1,
    })
    t.same(
      result,
      { requestsPerSecond: 12345, p50: 0.812, p99: 3.3, requests: 12345, failures: 2 },
      `run ${run + 1}: every figure of the report`,
    )
  }
})

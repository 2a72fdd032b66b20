/**
 * SIGTERM with spans that cannot be exported. Apart from
 * graceful-shutdown.test.ts, whose five gateway processes took 77 s on a
 * loaded machine, within reach of tap's 120 s timeout.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { startCli } from '../helpers/cli-gateway.js'
import { REFUSED_URL } from '../helpers/ports.js'

/**
 * A collector that refuses connections, or takes them and never answers:
 * the spans still buffered at SIGTERM cannot be exported. That is logged,
 * and neither decides the exit code nor holds the process past the drain.
 */
for (const collector of ['refusing', 'silent'] as const) {
  t.test(`SIGTERM with a ${collector} trace collector: spans lost are logged, the exit is 0`, async (t) => {
    const silent = createServer(() => {})
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    t.teardown(() => {
      silent.closeAllConnections()
      silent.close()
    })
    const endpoint =
      collector === 'refusing' ? REFUSED_URL : `http://127.0.0.1:${(silent.address() as AddressInfo).port}`
    const { child, url, output, exited } = await startCli(t, 'tracing: { enabled: true }', {
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_TRACES_SAMPLER: 'always_on',
    })
    for (let i = 0; i < 5; i++) t.equal((await fetch(`${url}/api/public/x`)).status, 200)
    const stopping = performance.now()
    child.kill('SIGTERM')
    const [code, signal] = await exited
    t.equal(signal, null)
    t.equal(code, 0, 'exit 0: the gateway drained; only spans were lost')
    t.ok(performance.now() - stopping < 8_000, 'the flush does not take the whole drain budget')
    t.match(output(), /spans still buffered at shutdown were not exported/)
    t.notMatch(output(), /error during shutdown|drain timeout reached/)
  })
}

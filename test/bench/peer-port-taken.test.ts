import { once } from 'node:events'
import { type AddressInfo, createServer } from 'node:net'
import t from 'tap'
import { spawnPeer } from '../../bench/peers.js'
import { SESSION_SECRET } from '../helpers/gateway.js'
import { isAddressInUse, REFUSED_URL } from '../helpers/ports.js'

// The bench starts its gateways on ports chosen before they listen (the IdP
// must know their redirect URIs) and starts them again elsewhere when one is
// taken: for that, a peer that could not bind must say so, code and all.
t.test('a gateway peer whose port is taken fails with EADDRINUSE, not only an exit code', async (t) => {
  const busy = createServer()
  busy.listen(0, '127.0.0.1')
  await once(busy, 'listening')
  t.teardown(() => busy.close())
  const { port } = busy.address() as AddressInfo
  const failure = await spawnPeer(['gatehouse', 'bench/gatehouse.yaml'], {
    env: {
      _TAPJS_PROCESSINFO_COVERAGE_: '0',
      GATEHOUSE_PORT: String(port),
      BENCH_ISSUER: REFUSED_URL,
      BENCH_CLIENT_SECRET: 'a-client-secret',
      BENCH_SESSION_SECRET: SESSION_SECRET,
      BENCH_STORE: 'memory',
      BENCH_UPSTREAM: REFUSED_URL,
      BENCH_LOG_LEVEL: 'silent',
    },
  }).then(
    (peer) => peer.stop().then(() => undefined),
    (err: unknown) => err,
  )
  t.ok(isAddressInUse(failure), `rejected with ${(failure as Error | undefined)?.message}`)
  t.match(failure, { code: 'EADDRINUSE' })
})

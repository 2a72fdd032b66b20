import t from 'tap'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'
import { REFUSED_URL } from '../helpers/ports.js'
import { browserHeaders, openSocket, type Refused, wsUrl } from '../helpers/websocket.js'

// Each failed upstream call wrote two warnings: the proxy's, naming the
// route and the cause, and the error handler's, naming only the code. A
// client asking a failing route at line rate doubled what reached the disk.
t.test('a failed upstream call, HTTP or WebSocket handshake, is one warning, not two', async (t) => {
  const stack = await startObservedStack(t, {
    routes: (upstream) => [
      route('/api/dead', REFUSED_URL),
      route('/api/refusing', upstream, { websocket: true }),
    ],
  })
  const { jar } = await login(stack.gateway.url)
  const warnings = () => stack.lines.filter((line) => line.level >= 40)

  const answers = await Promise.all(
    Array.from({ length: 20 }, () => apiCall(jar, `${stack.gateway.url}/api/dead`)),
  )
  t.same(new Set(answers.map((a) => a.json().error)), new Set(['upstream_unreachable']))
  t.equal(warnings().length, 20, 'one line each')
  t.match(warnings()[0], {
    msg: 'upstream request failed',
    route: '/api/dead',
    upstreamError: 'ECONNREFUSED',
  })

  // The echo upstream answers an upgrade with 200, not 101.
  const refused = (await openSocket(wsUrl(stack, '/api/refusing'), browserHeaders(stack, jar)).then(
    () => t.fail('the upgrade was accepted'),
    (answer: Refused) => answer,
  )) as Refused
  t.match(JSON.parse(refused.body), { error: 'upstream_upgrade_refused' })
  t.equal(warnings().length, 21, 'one line for the refused handshake')
  t.match(warnings().at(-1), { msg: 'websocket upstream handshake failed', route: '/api/refusing' })
})

/**
 * RFC 9449 §9: a `use_dpop_nonce` challenge asks the DPoP client, the
 * gateway, for a nonce; the browser holds no key. An API call whose replay
 * with the nonce is challenged again is `503 upstream_dpop_nonce` with
 * `Retry-After: 1` and a warning naming the route and why
 * (test/proxy/upstream-nonce-challenge-never-sends-the-browser-to-sign-in.test.ts).
 * A WebSocket upgrade so challenged twice (upstream nodes that do not
 * share their nonces) was a `502 upstream_upgrade_refused` with a line
 * that said only "refused": a client told the upstream refused its
 * socket, where an API call on the same route was told to try again,
 * and an operator with nothing pointing at the nonces. So was an
 * upgrade's challenge whose nonce no proof may carry.
 */
import t, { type Test } from 'tap'
import { route } from '../../helpers/gateway.js'
import { apiCall, login } from '../../helpers/login.js'
import { type ObservedStack, startObservedStack } from '../../helpers/observed-stack.js'
import { scriptedUpstream } from '../../helpers/scripted-upstream.js'
import { browserHeaders, openSocket, type Refused, wsUpstream, wsUrl } from '../../helpers/websocket.js'

/** `nonce` for each challenge in turn: a new one each time is a pool of nodes that do not share them. */
async function challengingStack(t: Test, nonce: () => string) {
  let dials = 0
  const ws = await wsUpstream(t, {
    verifyClient: (_info, answer) => {
      dials++
      answer(false, 401, 'Unauthorized', {
        'WWW-Authenticate': 'DPoP error="use_dpop_nonce"',
        'DPoP-Nonce': nonce(),
      })
    },
  })
  const api = await scriptedUpstream()
  t.teardown(() => api.close())
  api.answer((res) =>
    res.writeHead(401, { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': nonce() }).end(),
  )
  const stack = await startObservedStack(t, {
    config: { oidc: { dpop: true } },
    routes: () => [route('/api/orders', api.url), route('/api/live', ws.url, { websocket: true })],
  })
  const { jar } = await login(stack.gateway.url)
  const upgrade = () =>
    openSocket(wsUrl(stack, '/api/live/feed'), browserHeaders(stack, jar)).then(
      (socket) => {
        socket.terminate()
        return undefined
      },
      (err: Refused) => err,
    )
  return { stack, jar, api, upgrade, dials: () => dials }
}

const nonceWarnings = (stack: ObservedStack, path: string) =>
  stack.lines.filter(
    (l) => l.level === 40 && l.code === 'GATEHOUSE_ERR_UPSTREAM_DPOP_NONCE' && l.route === path,
  )

t.test(
  'an upgrade challenged again after its replay carried the nonce answers as an API call does: 503 upstream_dpop_nonce, Retry-After, the same warning',
  async (t) => {
    let n = 0
    const { stack, jar, api, upgrade, dials } = await challengingStack(t, () => `node-${++n}`)

    const call = await apiCall(jar, `${stack.gateway.url}/api/orders`)
    t.equal(call.status, 503, call.text)
    t.match(JSON.parse(call.text), { error: 'upstream_dpop_nonce' })
    t.equal(call.headers.get('retry-after'), '1')
    t.equal(api.seen.length, 2, 'the API call: one replay, not a loop')

    const refused = await upgrade()
    t.equal(refused?.status, 503, refused?.body ?? 'opened')
    t.match(JSON.parse(refused?.body ?? '{}'), { error: 'upstream_dpop_nonce' })
    t.equal(refused?.headers['retry-after'], '1')
    t.equal(refused?.headers['www-authenticate'], undefined, "the upstream's challenge is not the browser's")
    t.equal(dials(), 2, 'the upgrade: one replay, not a loop')

    const reason = 'the upstream asked again after the replay carried its nonce'
    const [callLine] = nonceWarnings(stack, '/api/orders')
    const [upgradeLine] = nonceWarnings(stack, '/api/live')
    t.match(callLine, { reason, msg: /use_dpop_nonce/ })
    t.match(upgradeLine, { reason, msg: callLine?.msg })
    t.notOk(
      stack.lines.some((l) => l.msg === 'websocket upstream handshake failed'),
      'no second line calls it a refusal',
    )
    t.equal((await apiCall(jar, `${stack.gateway.url}/auth/user`)).status, 200, 'the session stays')
  },
)

t.test(
  "an upgrade's challenge whose nonce no proof may carry is not dialled again, and is the API call's 503 too",
  async (t) => {
    const { stack, jar, api, upgrade, dials } = await challengingStack(t, () => 'n'.repeat(2048))

    const call = await apiCall(jar, `${stack.gateway.url}/api/orders`)
    t.equal(call.status, 503, call.text)
    t.equal(api.seen.length, 1)

    const refused = await upgrade()
    t.equal(refused?.status, 503, refused?.body ?? 'opened')
    t.match(JSON.parse(refused?.body ?? '{}'), { error: 'upstream_dpop_nonce' })
    t.equal(refused?.headers['retry-after'], '1')
    t.equal(dials(), 1, 'a nonce of 2 KiB is not dialled again')
    const [callLine] = nonceWarnings(stack, '/api/orders')
    t.match(nonceWarnings(stack, '/api/live'), [{ reason: callLine?.reason }])
  },
)

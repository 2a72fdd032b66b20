import type { ServerResponse } from 'node:http'
import { decodeJwt } from 'jose'
import t, { type Test } from 'tap'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'
import { startStack } from '../helpers/stack.js'

/**
 * A hostile upstream's nonces, end to end: a challenge with no nonce or two
 * is not replayed, a nonce no header of the gateway's may carry (a quote, a
 * letter past ASCII) never rides in a later proof, and one too large for a
 * response head is refused with the answer that carries it. The unit tests
 * (test/dpop/nonces.test.ts) hold the rule; these hold the wire.
 */
async function setup(t: Test) {
  const upstream = await scriptedUpstream()
  t.teardown(() => upstream.close())
  const stack = await startStack(t, {
    config: { oidc: { dpop: true } },
    routes: () => [route('/api/orders', upstream.url)],
  })
  const { jar } = await login(stack.gateway.url)
  const call = () => apiCall(jar, `${stack.gateway.url}/api/orders`)
  /** The nonce of each proof sent from the `from`th request on, `null` for none. */
  const noncesSent = (from: number) =>
    upstream.seen
      .slice(from)
      .map((r) => (decodeJwt(String(r.headers.dpop)).nonce as string | undefined) ?? null)
  return { upstream, call, noncesSent }
}

const CHALLENGE = 'DPoP error="use_dpop_nonce"'

for (const [name, answer] of [
  ['no DPoP-Nonce', (res: ServerResponse) => res.writeHead(401, { 'www-authenticate': CHALLENGE }).end()],
  [
    'two DPoP-Nonce fields',
    (res: ServerResponse) =>
      res
        .writeHead(401, [
          ['www-authenticate', CHALLENGE],
          ['dpop-nonce', 'first'],
          ['dpop-nonce', 'second'],
        ])
        .end(),
  ],
] as const) {
  t.test(`a use_dpop_nonce challenge with ${name} is not replayed: a 503 to send again`, async (t) => {
    const { upstream, call, noncesSent } = await setup(t)
    upstream.answer(answer)
    const refused = await call()
    t.equal(refused.status, 503, refused.text)
    t.match(refused.json(), { error: 'upstream_dpop_nonce' })
    t.equal(refused.headers.get('www-authenticate'), null, "the upstream's challenge is not the browser's")
    t.equal(upstream.seen.length, 1, 'one dial, no replay without a nonce to put in it')
    upstream.answer((res) => res.end('ok'))
    const again = await call()
    t.equal(again.status, 200)
    t.same(noncesSent(1), [null], 'nothing of the challenge rides in the next proof')
  })
}

t.test(
  'a nonce with a quote or a letter past ASCII, sent with a 200, never rides in a later proof',
  async (t) => {
    const { upstream, call, noncesSent } = await setup(t)
    for (const nonce of ['ab"c', 'ab\u00e9c', 'good']) {
      upstream.answer((res) => res.writeHead(200, { 'dpop-nonce': nonce }).end('ok'))
      t.equal((await call()).status, 200)
    }
    upstream.answer((res) => res.end('ok'))
    t.equal((await call()).status, 200)
    t.same(
      noncesSent(0),
      [null, null, null, 'good'],
      'only the NQCHAR nonce is carried, by the proof after it',
    )
  },
)

t.test('a 64 KiB DPoP-Nonce is refused with its answer, and never rides', async (t) => {
  const { upstream, call, noncesSent } = await setup(t)
  upstream.answer((res) => res.writeHead(200, { 'dpop-nonce': 'n'.repeat(64 * 1024) }).end('ok'))
  const huge = await call()
  t.equal(huge.status, 502, huge.text)
  t.match(huge.json(), { error: 'upstream_invalid_response' })
  upstream.answer((res) => res.end('ok'))
  t.equal((await call()).status, 200)
  t.same(noncesSent(0), [null, null])
})

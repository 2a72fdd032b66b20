import t from 'tap'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'

/**
 * An upstream's 401 `DPoP error="invalid_dpop_proof"` (RFC 9449 §7.1)
 * refuses the gateway's proof, not the session: an htu it reconstructs
 * otherwise (http behind a TLS terminator), a skewed clock, an algorithm
 * it does not take. Passed on as a 401, the README's SPA wrapper sent the
 * user to sign in, and with single sign-on at the IdP straight back to the
 * same 401: a sign-in loop that hid an operator's problem. It is now a
 * 502 that names the proof, and the log says what the proof named.
 */
t.test(
  "an upstream that refuses the gateway's proof is a 502 to the browser; a bearer request's 401 passes as it came",
  async (t) => {
    const upstream = await scriptedUpstream()
    t.teardown(() => upstream.close())
    const stack = await startObservedStack(t, {
      config: { oidc: { dpop: true } },
      routes: () => [
        route('/api/orders', upstream.url, { rewritePath: '/v1/orders' }),
        route('/api/plain', upstream.url, { dpop: false, scopes: ['openid'] }),
      ],
    })
    const { jar } = await login(stack.gateway.url)
    upstream.answer((res) =>
      res
        .writeHead(401, {
          'www-authenticate':
            'DPoP algs="ES256", error="invalid_dpop_proof", error_description="htu mismatch"',
        })
        .end(),
    )
    for (const method of ['GET', 'POST']) {
      const answer = await apiCall(jar, `${stack.gateway.url}/api/orders/7`, {
        method,
        ...(method === 'POST' ? { body: 'x'.repeat(70_000), headers: { 'content-type': 'text/plain' } } : {}),
      })
      t.equal(answer.status, 502, `${method}: ${answer.text}`)
      t.match(JSON.parse(answer.text), { error: 'upstream_dpop_proof_refused' })
      t.equal(answer.headers.get('www-authenticate'), null, "the upstream's challenge is not the browser's")
    }
    t.equal(upstream.seen.length, 2, 'a refused proof is not replayed')
    const warnings = stack.lines.filter((l) => l.level >= 40)
    t.match(warnings, [
      {
        code: 'GATEHOUSE_ERR_UPSTREAM_DPOP_PROOF_REFUSED',
        route: '/api/orders',
        htm: 'GET',
        htu: `${upstream.url}/v1/orders/7`,
      },
    ])
    t.equal(warnings.length, 1, 'one line a minute per route')
    const token = upstream.seen[0]!.headers.authorization!.slice('DPoP '.length)
    t.notOk(JSON.stringify(stack.lines).includes(token), 'no line quotes the token')
    t.equal((await apiCall(jar, `${stack.gateway.url}/auth/user`)).status, 200, 'the session stays')

    const plain = await apiCall(jar, `${stack.gateway.url}/api/plain`)
    t.equal(plain.status, 401, 'a request that carried no proof gets the upstream answer')
    t.match(upstream.seen.at(-1)!.headers.authorization, /^Bearer /)
  },
)

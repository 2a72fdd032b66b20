import { exportJWK, generateKeyPair, type JWTPayload } from 'jose'
import t, { type Test } from 'tap'
import { sessionRefOf } from '../helpers/app.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, route } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { endIdpSession, signLogoutToken } from '../helpers/logout.js'
import { startStack } from '../helpers/stack.js'

async function setup(t: Test) {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const jwk = { ...(await exportJWK(privateKey)), kid: 'idp-key', alg: 'RS256', use: 'sig' }
  const lines: Record<string, unknown>[] = []
  const stack = await startStack(t, {
    idp: { signingKey: jwk },
    backchannelLogout: true,
    routes: (upstream) => [route('/api/orders', upstream)],
    config: { logLevel: 'warn' },
    gateway: { logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
  })
  const { idp, gateway } = stack
  const base = gateway.url

  const sign = (
    claims: JWTPayload,
    { key = privateKey, audience = CLIENT_ID }: { key?: CryptoKey; audience?: string } = {},
  ) => signLogoutToken({ issuer: idp.issuer, audience, key, kid: 'idp-key' }, claims)
  const post = (token: string) =>
    jarFetch(new CookieJar(), `${base}/auth/backchannel-logout`, {
      method: 'POST',
      body: new URLSearchParams({ logout_token: token }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
  return { idp, base, sign, post, lines, app: gateway.app, store: gateway.app.gatehouse.stores.sessions }
}

t.test('the IdP ends its session: it sends a logout token and that gateway session is gone', async (t) => {
  const { idp, base, store } = await setup(t)
  const alice = await login(base, { user: 'alice' })
  const elsewhere = await login(base, { user: 'alice' })
  t.equal((await store.idsBySub('alice')).length, 2)

  const ended = await endIdpSession(alice.jar, idp.issuer)
  t.ok(ended.status < 400, `the IdP logged out (HTTP ${ended.status})`)
  t.equal((await apiCall(alice.jar, `${base}/api/orders`)).status, 401, 'that session ended')
  t.equal(
    (await apiCall(elsewhere.jar, `${base}/api/orders`)).status,
    200,
    'a session from another IdP session stays',
  )
})

t.test('forged, expired, replayed, wrong-audience and malformed logout tokens change nothing', async (t) => {
  const { base, sign, post, store, app, lines } = await setup(t)
  const { jar } = await login(base)
  const ref = sessionRefOf(app, jar.get(base, 'gatehouse')!)
  const { privateKey: otherKey } = await generateKeyPair('RS256')
  const old = Math.floor(Date.now() / 1000) - 600

  const cases: [string, string | Promise<string>][] = [
    ['forged: signed with another key', sign({ sub: 'alice' }, { key: otherKey })],
    ['expired: issued ten minutes ago', sign({ sub: 'alice', iat: old })],
    ['wrong audience', sign({ sub: 'alice' }, { audience: 'someone-else' })],
    ['no logout event', sign({ sub: 'alice', events: {} })],
    ['carries a nonce', sign({ sub: 'alice', nonce: 'n' })],
    ['neither sub nor sid', sign({})],
    ['not a JWT', 'not-a-jwt'],
  ]
  for (const [name, token] of cases) {
    const res = await post(await token)
    t.equal(res.status, 400, name)
    t.equal(res.json().error, 'invalid_request')
    // The IdP thinks the user signed out: the operator hears why not.
    t.match(lines.at(-1), { level: 40, msg: 'logout token refused', reason: res.json().message }, name)
  }
  t.notOk(JSON.stringify(lines).includes(await cases[0]![1]), 'never the token itself')
  const missing = await jarFetch(new CookieJar(), `${base}/auth/backchannel-logout`, { method: 'POST' })
  t.equal(missing.status, 400, 'no token at all')
  t.ok(await store.get(ref, Date.now()), 'the session survived every bad token')
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200)

  const valid = await sign({ sub: 'alice' })
  t.equal((await post(valid)).status, 200, 'a valid token by sub ends the sessions')
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 401)
  t.equal((await post(valid)).status, 400, 'the same token again is a replay')
})

t.test(
  'a logout token whose crit header carries text of the sender’s is refused without repeating it, in the answer or the warning',
  async (t) => {
    const { idp, post, lines } = await setup(t)
    const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
    const crit = `${'x'.repeat(11_000)}\u001b[31mINJECTED`
    const token = [
      part({ alg: 'RS256', typ: 'logout+jwt', kid: 'idp-key', crit: [crit] }),
      part({ iss: idp.issuer, aud: CLIENT_ID, iat: Math.floor(Date.now() / 1000), jti: 'j', sub: 'alice' }),
      Buffer.from('not a signature').toString('base64url'),
    ].join('.')
    const res = await post(token)
    t.equal(res.status, 400)
    t.same(res.json(), {
      error: 'invalid_request',
      message: 'The logout token is not valid: unknown critical header (crit).',
    })
    t.match(lines.at(-1), { level: 40, msg: 'logout token refused', reason: res.json().message })
    const logged = JSON.stringify(lines)
    t.notOk(/xxxxxxxxxx|INJECTED|\\u001b/.test(logged), 'none of the header in the log')
    t.ok(logged.length < 4_000, `the log stays small (${logged.length} characters)`)
  },
)

t.test('log out everywhere ends every session of the current user', async (t) => {
  const { base, store } = await setup(t)
  const one = await login(base, { user: 'bob' })
  const two = await login(base, { user: 'bob' })
  const other = await login(base, { user: 'carol' })
  t.equal(
    (await jarFetch(one.jar, `${base}/auth/logout-everywhere`, { method: 'POST' })).status,
    403,
    'needs the header',
  )
  const res = await apiCall(one.jar, `${base}/auth/logout-everywhere`, { method: 'POST' })
  t.equal(res.status, 200)
  t.equal(res.json().ended, 2)
  t.equal((await apiCall(two.jar, `${base}/api/orders`)).status, 401)
  t.equal((await apiCall(other.jar, `${base}/api/orders`)).status, 200, "another user's session stays")
  t.same(await store.idsBySub('bob'), [])
})

/**
 * A logout token that arrives while the issuer's JWKS cannot be fetched
 * was refused as invalid (400), which an IdP takes as final (Back-Channel
 * Logout §2.8): the user's sessions ran on after the IdP signed them out.
 * It is a 503 with Retry-After now, nothing is ended or remembered, and
 * the same token sent again once the keys are back is carried out.
 */
t.test(
  'a logout token that cannot be checked while the JWKS is down is a 503, and taken when resent',
  async (t) => {
    const { idp, base, sign, post } = await setup(t)
    const { jar } = await login(base, { user: 'erin' })
    const token = await sign({ sub: 'erin' })

    idp.setDown('503')
    const unchecked = await post(token)
    t.equal(unchecked.status, 503, 'not a 400 the IdP would take as final')
    t.ok(Number(unchecked.headers.get('retry-after')) >= 1, 'with Retry-After')
    t.match(unchecked.json(), { error: 'idp_unavailable', message: /could not be checked/ })
    idp.setDown('ok')
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'nothing was ended')

    t.equal(
      (await post(token)).status,
      200,
      'the same token, sent again, is carried out: its jti was not used up',
    )
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 401, 'the session ended')
  },
)

/**
 * §2.5: the IdP POSTs the logout token. A GET (an operator's browser or
 * curl checking the URL they registered) was answered 404 not_found, as
 * if the endpoint did not exist; it exists and takes POST: 405 with
 * `Allow: POST` (RFC 9110 §15.5.6), at the shared path and each
 * provider's, and nothing is read or ended.
 */
t.test('another method than POST at the back-channel endpoint: 405 with Allow: POST', async (t) => {
  const { base } = await setup(t)
  for (const path of ['/auth/backchannel-logout', '/auth/backchannel-logout/default']) {
    for (const method of ['GET', 'HEAD', 'PUT', 'DELETE', 'PATCH']) {
      const res = await jarFetch(new CookieJar(), `${base}${path}`, { method })
      t.equal(res.status, 405, `${method} ${path}`)
      t.equal(res.headers.get('allow'), 'POST', `${method} ${path}: Allow`)
      if (method === 'GET') t.match(res.json(), { error: 'method_not_allowed' })
    }
  }
  t.equal(
    (await jarFetch(new CookieJar(), `${base}/auth/backchannel-logouts`)).status,
    404,
    'not another path',
  )
})

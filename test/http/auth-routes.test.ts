import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { apiCall, followLoginFlow, jarFetch, login, parseForm } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

t.test('login redirects to the IdP with PKCE S256, state and nonce', async (t) => {
  const stack = await startStack(t)
  const jar = new CookieJar()
  const res = await jarFetch(jar, `${stack.gateway.url}/auth/login`)
  t.equal(res.status, 302)
  const target = new URL(res.location!)
  t.equal(target.origin, new URL(stack.idp.issuer).origin)
  t.equal(target.searchParams.get('code_challenge_method'), 'S256')
  t.match(target.searchParams.get('code_challenge'), /^[\w-]{43}$/)
  t.ok(target.searchParams.get('state'))
  t.ok(target.searchParams.get('nonce'))
  t.equal(target.searchParams.get('redirect_uri'), `${stack.gateway.url}/auth/callback`)
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith('gatehouse-login.'))!
  t.match(cookie, /HttpOnly/i)
  t.match(cookie, /Max-Age=600/i, 'the login state lives at most 10 minutes')
  t.notMatch(cookie, target.searchParams.get('state')!, 'the state is sealed, not readable')
})

t.test('bad callbacks get a 4xx page, create no session, and link to a new login', async (t) => {
  const stack = await startStack(t)
  const base = stack.gateway.url
  const store = stack.gateway.app.gatehouse.stores.sessions as unknown as { size: number }

  const noState = await jarFetch(new CookieJar(), `${base}/auth/callback?code=abc&state=xyz`)
  t.equal(noState.status, 400, 'no login-state cookie')
  t.match(noState.text, /href="\/auth\/login\?returnTo=/)

  // A real flow, then tampering with the response before it reaches the gateway.
  async function flow() {
    const jar = new CookieJar()
    const start = await jarFetch(jar, `${base}/auth/login`)
    const callback = new URL(await followLoginFlow(jar, start.location!, 'mallory'))
    return { jar, callback }
  }

  const wrongState = await flow()
  wrongState.callback.searchParams.set('state', 'forged')
  const r1 = await jarFetch(wrongState.jar, wrongState.callback.href)
  t.equal(r1.status, 400, 'state mismatch')

  const badCode = await flow()
  badCode.callback.searchParams.set('code', 'not-a-real-code')
  const r2 = await jarFetch(badCode.jar, badCode.callback.href)
  t.equal(r2.status, 400, 'failed code exchange')
  t.match(r2.text, /invalid_grant/)

  const idpError = await flow()
  const errorUrl = new URL(idpError.callback.href)
  errorUrl.search = ''
  errorUrl.searchParams.set('error', 'access_denied')
  errorUrl.searchParams.set('state', idpError.callback.searchParams.get('state')!)
  errorUrl.searchParams.set('iss', stack.idp.issuer)
  const r3 = await jarFetch(idpError.jar, errorUrl.href)
  t.equal(r3.status, 400, 'error= from the IdP')
  t.match(r3.text, /access_denied/)

  const wrongIss = await flow()
  wrongIss.callback.searchParams.set('iss', 'https://evil.example')
  const r4 = await jarFetch(wrongIss.jar, wrongIss.callback.href)
  t.equal(r4.status, 400, 'RFC 9207 iss mismatch')

  const replay = await flow()
  t.equal((await jarFetch(replay.jar, replay.callback.href)).status, 302, 'the genuine callback works once')
  const again = await jarFetch(replay.jar, replay.callback.href)
  t.equal(again.status, 400, 'the login state is single-use')

  for (const r of [noState, r1, r2, r3, r4]) {
    t.notMatch(r.headers.getSetCookie().join(), /gatehouse=[^;]/, 'no session cookie')
    t.equal(r.headers.get('cache-control'), 'no-store')
    t.match(r.headers.get('content-security-policy'), /default-src 'none'/)
  }
  t.equal(store.size, 1, 'only the genuine login created a session')
})

t.test(
  'logout: a forged link is refused; the real one revokes, ends the session and goes to the IdP',
  async (t) => {
    const stack = await startStack(t)
    const base = stack.gateway.url
    const { jar } = await login(base)
    const { logoutUrl } = (await apiCall(jar, `${base}/auth/user`)).json<{ logoutUrl: string }>()

    for (const forged of ['/auth/logout', '/auth/logout?sid=guess', `${logoutUrl}x`]) {
      const res = await jarFetch(jar, `${base}${forged}`)
      t.equal(res.status, 400, forged)
    }
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'still logged in')

    const res = await jarFetch(jar, `${base}${logoutUrl}`)
    t.equal(res.status, 200, 'a page that posts the logout to the IdP (test/http/logout-end-session.test.ts)')
    const { action, fields } = parseForm(res.text, base)
    t.equal(new URL(action).origin, new URL(stack.idp.issuer).origin, 'RP-initiated logout at the IdP')
    t.ok(fields.get('id_token_hint'))
    t.equal(fields.get('post_logout_redirect_uri'), `${base}/`)
    t.equal(fields.get('client_id'), 'gatehouse-test')
    t.match(res.headers.getSetCookie().join('\n'), /gatehouse=;/, 'cookie cleared')
    t.equal(stack.idp.stats.revocations, 1, 'the refresh token was revoked at the IdP')
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 401, 'API answers 401 afterwards')
  },
)

t.test('health and readiness', async (t) => {
  const stack = await startStack(t)
  const health = await jarFetch(new CookieJar(), `${stack.gateway.url}/healthz`)
  t.equal(health.status, 200)
  const ready = await jarFetch(new CookieJar(), `${stack.gateway.url}/readyz`)
  t.equal(ready.status, 200)
  t.same(ready.json().checks, { idp: 'ok', store: 'ok', clientAuth: 'ok' })
})

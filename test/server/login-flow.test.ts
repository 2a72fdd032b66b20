import t from 'tap'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

t.test('a user logs in through the IdP form and calls an API with a token the IdP accepts', async (t) => {
  const stack = await startStack(t)
  const base = stack.gateway.url

  const { jar, callback } = await login(base, { user: 'alice', returnTo: '/orders?page=2' })
  t.equal(callback.status, 302)
  t.equal(callback.location, `${base}/orders?page=2`, 'lands on returnTo')
  const setCookie = callback.headers.getSetCookie().join('\n')
  t.match(setCookie, /gatehouse=[^;]+;.*HttpOnly/i)
  t.match(setCookie, /SameSite=Lax/i)
  t.ok(jar.get(base, 'gatehouse'), 'session cookie set')
  t.notMatch(jar.header(base)!, /gatehouse-login/, 'login-state cookie is spent')
  t.ok(jar.get(base, 'gatehouse')!.length <= 200, 'the session cookie is small')

  const user = await apiCall(jar, `${base}/auth/user`)
  t.equal(user.status, 200)
  const body = user.json<{
    sub: string
    claims: Record<string, unknown>
    sessionExpiresAt: string
    logoutUrl: string
  }>()
  t.equal(body.sub, 'alice')
  t.equal(body.claims.name, 'Alice')
  t.notOk('nonce' in body.claims)
  t.match(body.logoutUrl, /^\/auth\/logout\?sid=/)
  t.ok(Date.parse(body.sessionExpiresAt) > Date.now())
  t.notMatch(user.text, /eyJ/, 'no JWT in what the browser sees')

  const orders = await apiCall(jar, `${base}/api/orders/42?x=1`, {
    headers: { authorization: 'Bearer forged', cookie: 'x' },
  })
  t.equal(orders.status, 200)
  const seen = stack.upstream.requests.at(-1)!
  t.equal(seen.path, '/v1/orders/42?x=1', 'prefix rewritten, path and query kept')
  t.match(seen.authorization, /^Bearer /)
  t.not(seen.authorization, 'Bearer forged', 'incoming Authorization replaced')
  t.ok(await stack.idp.isActive(seen.authorization!.slice(7)), 'the IdP says the forwarded token is active')
  t.notMatch(seen.headers.cookie ?? '', /gatehouse/, 'the session cookie never goes upstream')
  t.equal(seen.headers['x-forwarded-proto'], 'http')
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
  t.equal(seen.headers['x-forwarded-host'], new URL(base).host)
  t.notMatch(orders.text, seen.authorization!.slice(7), 'the token is not reflected to the browser')
})

t.test('POST bodies stream through to the upstream', async (t) => {
  const stack = await startStack(t)
  const { jar } = await login(stack.gateway.url)
  const payload = JSON.stringify({ item: 'book', qty: 2, pad: 'x'.repeat(100_000) })
  const res = await apiCall(jar, `${stack.gateway.url}/api/orders`, {
    method: 'POST',
    body: payload,
    headers: { 'content-type': 'application/json' },
  })
  t.equal(res.status, 200)
  t.equal(stack.upstream.requests.at(-1)!.body, payload)
  t.equal(stack.upstream.requests.at(-1)!.method, 'POST')
})

t.test('token modes: user, optional-user, client and none', async (t) => {
  const stack = await startStack(t)
  const base = stack.gateway.url
  const anonymous = await jarFetch(
    new (await import('../helpers/cookie-jar.js')).CookieJar(),
    `${base}/api/orders`,
    {
      headers: { 'x-csrf': '1' },
    },
  )
  t.equal(anonymous.status, 401, 'user route without a session')
  t.same(anonymous.json(), { error: 'unauthenticated', message: anonymous.json().message })
  t.notOk(anonymous.location, 'never a redirect')

  const { jar } = await login(base)
  const { jar: noSession } = { jar: new (await import('../helpers/cookie-jar.js')).CookieJar() }

  stack.upstream.clear()
  t.equal((await apiCall(noSession, `${base}/api/maybe`)).status, 200)
  t.equal(stack.upstream.requests.at(-1)!.authorization, undefined, 'optional-user without session: no token')
  t.equal((await apiCall(jar, `${base}/api/maybe`)).status, 200)
  t.match(stack.upstream.requests.at(-1)!.authorization, /^Bearer /, 'optional-user with session: token')

  t.equal(
    (await apiCall(noSession, `${base}/api/public`, { headers: { authorization: 'Bearer x' } })).status,
    200,
  )
  t.equal(stack.upstream.requests.at(-1)!.authorization, undefined, 'none: no token, incoming one dropped')

  t.equal((await apiCall(noSession, `${base}/api/reports`)).status, 401, 'client route: a session is needed')
  t.equal((await apiCall(jar, `${base}/api/reports`)).status, 200)
  const clientToken = stack.upstream.requests.at(-1)!.authorization!
  t.match(clientToken, /^Bearer /, "client route with a session: the gateway's client-credentials token")
  t.ok(await stack.idp.isActive(clientToken.slice(7)))
})

import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

const parRequired = {
  idp: { par: true },
  client: { requirePushedAuthorizationRequests: true },
} as const

t.test(
  'a PAR-required client (RFC 9126): the browser carries only request_uri; login, refresh and logout work',
  async (t) => {
    const clock = new TestClock()
    const stack = await startStack(t, { ...parRequired, gateway: { now: clock.now } })
    const base = stack.gateway.url
    const start = await jarFetch(new CookieJar(), `${base}/auth/login`)
    const sent = new URL(start.location!).searchParams
    t.same([...sent.keys()].sort(), ['client_id', 'request_uri'], 'RFC 9126 §4: nothing else in the URL')
    t.match(sent.get('request_uri'), /^urn:ietf:params:oauth:request_uri:/)

    const { jar, callback } = await login(base, { user: 'sam', params: { login_hint: 'sam' } })
    t.equal(callback.status, 302)
    const user = (await apiCall(jar, `${base}/auth/user`)).json<{ refreshable: boolean; logoutUrl: string }>()
    t.equal(user.refreshable, true, 'prompt=consent travelled in the pushed request')
    clock.advance(61_000)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200)
    t.equal(stack.idp.stats.refreshGrants, 1)
    t.equal((await jarFetch(jar, `${base}${user.logoutUrl}`)).status, 200)
    t.equal(stack.idp.stats.revocations, 1)
  },
)

t.test('par: off against a PAR-required client: the IdP refuses the login', async (t) => {
  const stack = await startStack(t, { ...parRequired, config: { oidc: { par: 'off' } } })
  const { callback, callbackUrl, jar } = await login(stack.gateway.url)
  t.equal(new URL(callbackUrl).searchParams.get('error'), 'invalid_request')
  t.equal(callback.status, 400)
  t.equal(jar.get(stack.gateway.url, 'gatehouse'), undefined)
})

t.test('par: required against an IdP without PAR: /readyz 503 and logins refused, naming why', async (t) => {
  const stack = await startStack(t, { config: { oidc: { par: 'required' } } })
  const base = stack.gateway.url
  const ready = await jarFetch(new CookieJar(), `${base}/readyz`)
  t.equal(ready.status, 503)
  t.equal(ready.headers.get('retry-after'), '30', 'an incompatible IdP waits for a config change')
  t.match(ready.json(), {
    status: 'not_ready',
    checks: { idp: /par: required.*pushed_authorization_request_endpoint/, store: 'ok' },
  })
  const start = await jarFetch(new CookieJar(), `${base}/auth/login`)
  t.equal(start.status, 503)
  t.equal(start.headers.get('retry-after'), '30', 'the catalogue says how long')
  t.match(start.text, /does not advertise pushed_authorization_request_endpoint/)
})

t.test('par: required against an IdP with PAR is ready', async (t) => {
  const stack = await startStack(t, { idp: { par: true }, config: { oidc: { par: 'required' } } })
  t.equal((await jarFetch(new CookieJar(), `${stack.gateway.url}/readyz`)).status, 200)
  t.equal((await login(stack.gateway.url)).callback.status, 302)
})

/**
 * The classification (src/oidc/answers.ts) for the calls other than the
 * login token's refresh, against the real dev IdP: the code exchange, PAR,
 * client credentials, a route's own refresh, revocation and discovery.
 * refresh-answers.test.ts goes through every row for the refresh.
 */
import t from 'tap'
import { buildGateway } from '../../src/server/gateway.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, CLIENT_SECRET, route, testConfig } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'
import { REFUSED_PORT } from '../helpers/ports.js'
import { defaultRoutes } from '../helpers/stack.js'

const WRONG_SECRET = { oidc: { clientSecret: 'not-the-registered-secret' } }
const refusedLine = (l: { code?: unknown; level: number }) =>
  l.code === 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED' && l.level === 50

t.test(
  'code exchange with a wrong secret: a "misconfigured" page, an error line with a hint, a metric, /readyz degraded',
  async (t) => {
    const stack = await startObservedStack(t, { config: WRONG_SECRET })
    const { callback, jar } = await login(stack.gateway.url)
    t.equal(callback.status, 500, 'neither the fault of the user nor an outage')
    t.match(callback.text, /<title>Sign-in is misconfigured<\/title>/)
    t.match(callback.text, /Retrying will not help/)
    t.equal(callback.headers.get('retry-after'), null, 'no "retry later"')
    t.equal(jar.get(stack.gateway.url, 'gatehouse'), undefined, 'no session')

    const line = stack.lines.find(refusedLine)
    t.match(line, {
      operation: 'code_exchange',
      clientId: CLIENT_ID,
      clientAuth: 'client_secret_basic',
      oauthError: 'invalid_client',
      reason: /^HTTP 401 with WWW-Authenticate: Basic error="invalid_client"/,
      hint: /check oidc\.clientSecret/,
    })
    t.notOk(JSON.stringify(stack.lines).includes('not-the-registered-secret'), 'never the secret')
    t.same(await stack.metrics('gatehouse_idp_client_refus'), [
      'gatehouse_idp_client_refusals_total{operation="code_exchange",answer="invalid_client",idp="default"} 1',
      'gatehouse_idp_client_refused 1',
    ])
    const ready = await jarFetch(new CookieJar(), `${stack.gateway.url}/readyz`)
    t.equal(ready.status, 200, 'kept in rotation: every instance shares the fault')
    t.match(ready.json(), {
      status: 'degraded',
      checks: {
        idp: 'ok',
        store: 'ok',
        clientAuth: /refuses the gateway's client credentials: code_exchange \(invalid_client\)/,
      },
    })
    // /readyz is on the public port: the IdP's own words stay in the log.
    t.notMatch(JSON.stringify(ready.json()), /client authentication failed|WWW-Authenticate/)
  },
)

t.test('code exchange: a refused grant, an outage and an invalid answer each get their page', async (t) => {
  const stack = await startObservedStack(t)
  const exchange = (answer: Parameters<typeof stack.idp.answer>[1]) => {
    stack.idp.answer('token', { grantType: 'authorization_code', ...answer! })
    return login(stack.gateway.url)
  }
  const refused = await exchange({
    status: 400,
    body: { error: 'invalid_grant', error_description: 'grant refused by the test' },
  })
  t.equal(refused.callback.status, 400)
  t.match(refused.callback.text, /Sign-in failed.*\(invalid_grant\)/s)
  t.match(
    stack.lines.find((l) => l.msg === 'login callback refused' && l.level === 30),
    {
      code: 'GATEHOUSE_ERR_LOGIN_FAILED',
      operation: 'code_exchange',
      status: 400,
      oauthError: 'invalid_grant',
      oauthErrorDescription: 'grant refused by the test',
    },
    'the log says what the IdP answered, as the page does',
  )

  const down = await exchange({ status: 502, body: 'bad gateway' })
  t.equal(down.callback.status, 503)
  t.match(down.callback.text, /Sign-in is unavailable right now/)
  t.ok(Number(down.callback.headers.get('retry-after')) > 0)
  t.match(
    stack.lines.find((l) => l.msg === 'login callback refused' && l.level === 40),
    {
      code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE',
      cause: 'HTTP 502',
      operation: 'code_exchange',
      reason: 'HTTP 502',
    },
    'the log names the status',
  )

  const invalid = await exchange({ status: 200, body: { token_type: 'Bearer' } })
  t.equal(invalid.callback.status, 400)
  t.match(invalid.callback.text, /The login response failed validation/)
})

t.test(
  "userinfo refusing the access token: the login fails, and the gateway's credentials are not blamed",
  async (t) => {
    const stack = await startObservedStack(t)
    stack.idp.answer('userinfo', {
      status: 401,
      headers: { 'www-authenticate': 'Bearer realm="idp", error="invalid_token"' },
    })
    const { callback, jar } = await login(stack.gateway.url)
    t.equal(callback.status, 400)
    t.match(callback.text, /Sign-in failed.*\(invalid_token\)/s)
    t.equal(jar.get(stack.gateway.url, 'gatehouse'), undefined)
    t.notOk(
      stack.lines.some(refusedLine),
      'no client-refused line: userinfo authenticates the token, not the client',
    )
    t.same(await stack.metrics('gatehouse_idp_client_refused '), ['gatehouse_idp_client_refused 0'])
  },
)

t.test('PAR with a wrong secret: /auth/login itself says sign-in is misconfigured', async (t) => {
  const stack = await startObservedStack(t, { idp: { par: true }, config: WRONG_SECRET })
  const start = await jarFetch(new CookieJar(), `${stack.gateway.url}/auth/login`)
  t.equal(start.status, 500)
  t.match(start.text, /Sign-in is misconfigured/)
  t.match(stack.lines.find(refusedLine), { operation: 'par', oauthError: 'invalid_client' })
})

t.test(
  'PAR refused with a bare 403 (Glewlwyd, for a wrong secret or a client auth method it does not allow): sign-in is misconfigured, not "retry later"',
  async (t) => {
    const stack = await startObservedStack(t, { idp: { par: true } })
    stack.idp.answer('par', { status: 403 })
    const start = await jarFetch(new CookieJar(), `${stack.gateway.url}/auth/login`)
    t.equal(start.status, 500, 'every login fails until an operator acts')
    t.match(start.text, /Sign-in is misconfigured/)
    t.notOk(start.headers.get('retry-after'), 'nothing to retry')
    t.match(
      stack.lines.find((l) => l.operation === 'par'),
      { level: 50, reason: 'HTTP 403 that is not JSON', hint: String },
      'an error line says what came back, with a hint',
    )
  },
)

t.test('PAR refusing the request: a "sign-in failed" page naming the error', async (t) => {
  const stack = await startObservedStack(t, { idp: { par: true } })
  stack.idp.answer('par', { status: 400, body: { error: 'invalid_request', error_description: 'bad' } })
  const start = await jarFetch(new CookieJar(), `${stack.gateway.url}/auth/login`)
  t.equal(start.status, 400)
  t.match(start.text, /Sign-in failed.*\(invalid_request\)/s)
})

t.test(
  'client credentials: refused credentials answer 500 until the IdP accepts them again, asked 5 minutes later, then /readyz recovers',
  async (t) => {
    const stack = await startObservedStack(t)
    const { jar } = await login(stack.gateway.url)
    const reports = `${stack.gateway.url}/api/reports`
    stack.idp.answer('token', {
      grantType: 'client_credentials',
      status: 401,
      headers: { 'www-authenticate': 'Basic realm="idp"' },
    })
    const refused = await apiCall(jar, reports)
    t.equal(refused.status, 500)
    t.same(refused.json().error, 'idp_client_refused')
    t.match(refused.json().message, /Sign-in is misconfigured/)
    t.match(stack.lines.find(refusedLine), {
      operation: 'client_credentials',
      reason: 'HTTP 401 with WWW-Authenticate: Basic',
    })
    t.match((await jarFetch(new CookieJar(), `${stack.gateway.url}/readyz`)).json(), {
      status: 'degraded',
      checks: { clientAuth: /client_credentials \(unauthorized\)/ },
    })
    t.equal((await apiCall(jar, `${stack.gateway.url}/api/orders`)).status, 200, 'user routes still work')

    stack.idp.answer('token')
    const asked = stack.idp.stats.tokenRequests
    t.equal((await apiCall(jar, reports)).status, 500, 'fixed at the IdP, but a refused client is held back')
    t.equal(stack.idp.stats.tokenRequests, asked, 'without asking the IdP')
    stack.clock.advance(300_000)
    t.equal(
      (await apiCall(jar, reports)).status,
      200,
      'fixed at the IdP: the first call after 5 minutes works',
    )
    t.match((await jarFetch(new CookieJar(), `${stack.gateway.url}/readyz`)).json(), {
      status: 'ready',
      checks: { clientAuth: 'ok' },
    })
    t.ok(stack.lines.some((l) => /accepts the gateway's client credentials again/.test(l.msg)))
    t.same(await stack.metrics('gatehouse_idp_client_refused '), ['gatehouse_idp_client_refused 0'])
  },
)

t.test(
  "/readyz names the refusal in the gateway's words: a challenge error that echoes the client secret stays out",
  async (t) => {
    const stack = await startObservedStack(t)
    const { jar } = await login(stack.gateway.url)
    stack.idp.answer('token', {
      grantType: 'client_credentials',
      status: 401,
      headers: { 'www-authenticate': `Basic error="secret ${CLIENT_SECRET} bad"` },
    })
    t.equal((await apiCall(jar, `${stack.gateway.url}/api/reports`)).status, 500)
    const ready = await jarFetch(new CookieJar(), `${stack.gateway.url}/readyz`)
    t.match(ready.json(), {
      status: 'degraded',
      checks: {
        clientAuth:
          "the identity provider refuses the gateway's client credentials: client_credentials (unauthorized); see the error log for the hint",
      },
    })
    t.notOk(ready.text.includes(CLIENT_SECRET), 'never the secret on the public port')
    t.match(stack.lines.find(refusedLine), {
      operation: 'client_credentials',
      oauthError: 'secret [redacted] bad',
      reason: 'HTTP 401 with WWW-Authenticate: Basic error="secret [redacted] bad"',
    })
    t.notOk(JSON.stringify(stack.lines).includes(CLIENT_SECRET), 'nor in the log')
  },
)

t.test('client credentials refused for the route (invalid_scope): 403 on that route only', async (t) => {
  const stack = await startObservedStack(t, {
    routes: (upstream) => [
      ...defaultRoutes(upstream),
      route('/api/secret', upstream, { token: 'client', scopes: ['not.a.scope'] }),
    ],
  })
  const { jar } = await login(stack.gateway.url)
  // oidc-provider drops scopes it does not know from a client-credentials grant; stricter OPs refuse.
  stack.idp.answer('token', {
    grantType: 'client_credentials',
    status: 400,
    body: { error: 'invalid_scope', error_description: 'not.a.scope is not allowed' },
  })
  const refused = await apiCall(jar, `${stack.gateway.url}/api/secret`)
  stack.idp.answer('token')
  t.equal(refused.status, 403)
  t.match(refused.json(), { error: 'client_token_refused', message: /\(invalid_scope\)/ })
  t.match(
    stack.lines.find((l) => l.code === 'GATEHOUSE_ERR_CLIENT_TOKEN_REFUSED'),
    {
      level: 40,
      operation: 'client_credentials',
      idp: 'default',
      oauthError: 'invalid_scope',
      oauthErrorDescription: 'not.a.scope is not allowed',
    },
    'the operator hears of it: a refused client-credentials token is the config’s or the IdP’s',
  )
  t.equal((await apiCall(jar, `${stack.gateway.url}/api/reports`)).status, 200, 'other client routes work')
  t.equal((await apiCall(jar, `${stack.gateway.url}/auth/user`)).status, 200, 'the session stays')
})

t.test('a route token: invalid_scope refuses the route, invalid_request ends the session', async (t) => {
  const stack = await startObservedStack(t, {
    routes: (upstream) => [
      ...defaultRoutes(upstream),
      // oidc.scopes does not ask for orders.read, so the grant cannot cover it (RFC 6749 §6).
      route('/api/scoped', upstream, { scopes: ['orders.read'] }),
    ],
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  const scoped = await apiCall(jar, `${base}/api/scoped`)
  t.equal(scoped.status, 403)
  t.match(scoped.json(), { error: 'resource_refused', message: /\(invalid_scope\)/ })
  t.match(
    stack.lines.find((l) => /^resource refused/.test(l.msg)),
    { resource: 'scope:orders.read', oauthError: 'invalid_scope' },
  )
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'the session and its other routes stay')
  t.equal(stack.idp.stats.refreshReplays, 0)

  stack.idp.answer('token', { grantType: 'refresh_token', status: 400, body: { error: 'invalid_request' } })
  const ended = await apiCall(jar, `${base}/api/scoped`)
  t.equal(ended.status, 401, 'the one refresh token behind every route is dead')
  t.equal(ended.json().error, 'session_expired')
  t.equal((await apiCall(jar, `${base}/auth/user`)).status, 401)
})

t.test('revocation at logout: refused or down, the logout completes and the log says why', async (t) => {
  const stack = await startObservedStack(t)
  const logout = async (answer: Parameters<typeof stack.idp.answer>[1]) => {
    const { jar } = await login(stack.gateway.url)
    const user = (await apiCall(jar, `${stack.gateway.url}/auth/user`)).json<{ logoutUrl: string }>()
    stack.idp.answer('revocation', answer)
    const out = await jarFetch(jar, `${stack.gateway.url}${user.logoutUrl}`)
    return { out, after: await apiCall(jar, `${stack.gateway.url}/auth/user`) }
  }
  const refused = await logout({ status: 401, body: { error: 'invalid_client' } })
  t.equal(refused.out.status, 200, 'the page that posts the logout to the IdP')
  t.equal(refused.after.status, 401, 'signed out all the same')
  t.match(stack.lines.find(refusedLine), { operation: 'revocation', oauthError: 'invalid_client' })

  const down = await logout({ status: 503, body: 'maintenance' })
  t.equal(down.out.status, 200)
  t.equal(down.after.status, 401)
  t.match(
    stack.lines.find((l) => l.msg === 'refresh token revocation failed' && l.cause === 'HTTP 503'),
    {
      level: 40,
      code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE',
    },
  )
})

t.test('discovery against a closed port: the log names ECONNREFUSED and the address', async (t) => {
  const closed = REFUSED_PORT
  let logged!: (line: string) => void
  const failedLine = new Promise<string>((resolve) => {
    logged = (line) => {
      if (line.includes('discovery failed')) resolve(line)
    }
  })
  const app = await buildGateway(
    testConfig({ port: 0, issuer: `http://127.0.0.1:${closed}`, routes: [], logLevel: 'info' }),
    { logStream: { write: (line: string) => logged(line) } },
  )
  t.teardown(() => app.close())
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const failed = JSON.parse(await failedLine)
  t.equal(failed.reason, `ECONNREFUSED 127.0.0.1:${closed}`, 'not "fetch failed"')
  const ready = await jarFetch(new CookieJar(), `${url}/readyz`)
  t.equal(ready.status, 503)
})

/**
 * The quirks matrix, sign-in side: each deviation a real OP shows, on the
 * dev IdP (dev/idp-quirks.ts), with what Gatehouse does and what the
 * operator sees. The others: idp-quirks-tokens.test.ts,
 * basic-credentials-compared-raw.test.ts, and the invalid_request row of
 * refresh-answers.test.ts.
 */
import { decodeProtectedHeader } from 'jose'
import t from 'tap'
import { compare } from '../../src/cli/check-online.js'
import { sessionRefOf } from '../helpers/app.js'
import { apiCall, jarFetch, login, parseForm } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'

const warnings = (lines: { level: number }[]) => lines.filter((l) => l.level >= 40)

t.test('no RFC 9207 iss parameter: sign-in works; check --online warns', async (t) => {
  const stack = await startObservedStack(t, { idp: { quirks: { noIssParameter: true } } })
  const { callback, callbackUrl } = await login(stack.gateway.url)
  t.equal(new URL(callbackUrl).searchParams.get('iss'), null, 'the IdP sent no iss')
  t.equal(callback.status, 302, 'signed in: an IdP that does not advertise iss need not send it')
  t.same(warnings(stack.lines), [])
  const { oidc } = stack.gateway.app.gatehouse
  const row = compare(stack.config, oidc.metadata!).rows.find((r) => r.capability.startsWith('RFC 9207'))
  t.match(row, { advertised: 'no', verdict: 'warn' }, 'what the operator sees: a warn row')
})

t.test('an IdP that advertises iss but leaves it out: the login fails, and says why', async (t) => {
  const stack = await startObservedStack(t, {
    idp: { quirks: { noIssParameter: true } },
  })
  // Advertised, as oidc-provider does, but not sent: the mix-up defence must not be skipped.
  Object.assign(stack.gateway.app.gatehouse.oidc.metadata!, {
    authorization_response_iss_parameter_supported: true,
  })
  const { callback } = await login(stack.gateway.url)
  t.equal(callback.status, 400)
  t.match(
    callback.text,
    /The login response failed validation:\s+response parameter &quot;iss&quot; \(issuer\) missing/,
  )
})

t.test('HS256 ID tokens: sign-in, /auth/user and logout work; nothing to warn about', async (t) => {
  const stack = await startObservedStack(t, { idp: { quirks: { hs256IdTokens: true } } })
  const base = stack.gateway.url
  const { callback, jar } = await login(base)
  t.equal(callback.status, 302)
  const store = stack.gateway.app.gatehouse.stores.sessions
  const session = (await store.get(
    sessionRefOf(stack.gateway.app, jar.get(base, 'gatehouse')!),
    stack.clock.now(),
  ))!
  t.equal(decodeProtectedHeader(session.tokens.idToken!).alg, 'HS256', 'signed with the client secret')
  const user = (await apiCall(jar, `${base}/auth/user`)).json<{ sub: string; logoutUrl: string }>()
  t.equal(user.sub, 'alice')
  const out = await jarFetch(jar, `${base}${user.logoutUrl}`)
  t.equal(out.status, 200, 'the page that posts the logout to the IdP')
  t.ok(parseForm(out.text, base).fields.get('id_token_hint'), 'the HS256 ID token is the logout hint')
  t.same(warnings(stack.lines), [])
})

t.test('userinfo as a signed JWT: its claims reach /auth/user', async (t) => {
  const stack = await startObservedStack(t, {
    idp: { profileClaims: 'userinfo', quirks: { signedUserinfo: true } },
  })
  const base = stack.gateway.url
  const { callback, jar } = await login(base, { user: 'uma' })
  t.equal(callback.status, 302)
  const user = (await apiCall(jar, `${base}/auth/user`)).json<{ claims: Record<string, unknown> }>()
  t.equal(user.claims.name, 'Uma', 'name came only from the signed userinfo')
  const store = stack.gateway.app.gatehouse.stores.sessions
  const session = (await store.get(
    sessionRefOf(stack.gateway.app, jar.get(base, 'gatehouse')!),
    stack.clock.now(),
  ))!
  const userinfo = await fetch(new URL('/me', stack.idp.issuer), {
    headers: { authorization: `Bearer ${session.tokens.accessToken}` },
  })
  await userinfo.body?.cancel()
  t.equal(userinfo.headers.get('content-type'), 'application/jwt; charset=utf-8', 'the IdP answers a JWT')
  t.same(warnings(stack.lines), [])
})

t.test(
  'prompt=none that shows a login page: the browser stays at the IdP; signing in there completes',
  async (t) => {
    const stack = await startObservedStack(t, { idp: { quirks: { promptNoneShowsLogin: true } } })
    const base = stack.gateway.url
    const { callback, responses, jar } = await login(base, {
      params: { prompt: 'none' },
      returnTo: '/orders',
    })
    t.ok(
      responses.some((r) => r.status === 200 && /name="login"/.test(r.text)),
      'the IdP showed its login page instead of answering login_required',
    )
    t.equal(callback.status, 302)
    t.equal(callback.location, `${base}/orders`, 'the user, once signed in there, lands on returnTo')
    const user = (await apiCall(jar, `${base}/auth/user`)).json<{ refreshable: boolean }>()
    t.equal(user.refreshable, false, 'a silent request carries no prompt=consent: no refresh token')
    t.same(
      warnings(stack.lines),
      [],
      'nothing in the log: docs/identity-providers.md tells the SPA developer',
    )
  },
)

t.test(
  'a wrong secret answered 403 unauthorized_client (Glewlwyd): the hint names the credentials as well as the grant',
  async (t) => {
    const stack = await startObservedStack(t, {
      idp: { quirks: { unauthorizedClientForBadCredentials: true } },
      config: { oidc: { clientSecret: 'not-the-registered-secret' } },
    })
    const { callback } = await login(stack.gateway.url)
    t.equal(callback.status, 500)
    t.match(callback.text, /Sign-in is misconfigured/)
    t.match(
      stack.lines.find((l) => l.code === 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED' && l.level === 50),
      {
        operation: 'code_exchange',
        reason: 'HTTP 403 unauthorized_client',
        hint: /not allowed this grant \(authorization_code\): .*; or, at providers that answer unauthorized_client to refused credentials too, the credentials are wrong: check oidc\.clientSecret and that oidc\.clientAuth \(client_secret_basic\) is a method the provider allows this client/,
      },
    )
  },
)

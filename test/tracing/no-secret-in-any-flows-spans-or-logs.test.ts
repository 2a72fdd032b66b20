/**
 * What docs/observability.md promises of spans ("What spans never hold") and
 * logs, over every flow rather than the happy path span-tree.test.ts scans:
 * a replayed code, an IdP's `error=` redirect, a refresh, a refresh the IdP
 * refuses and one it cannot answer, a client-credentials token, forged and
 * valid back-channel logout tokens, a logout with revocation and an
 * end-session page carrying the ID token, and a browser's hostile trace
 * context. Every span is exported (always_on) and every log level written
 * (trace); both are scanned for each secret value the test knows.
 */
import { exportJWK, generateKeyPair } from 'jose'
import t from 'tap'
import { sessionRefOf } from '../helpers/app.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, CLIENT_SECRET, SESSION_SECRET, TestClock } from '../helpers/gateway.js'
import { apiCall, jarFetch, login, parseForm } from '../helpers/login.js'
import { signLogoutToken } from '../helpers/logout.js'
import { receiveSpans, SERVER } from '../helpers/otlp-receiver.js'
import { startStack } from '../helpers/stack.js'

const receiver = await receiveSpans(t)

t.test('no span or log line of any flow holds a token, code, state, cookie or secret', async (t) => {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const jwk = { ...(await exportJWK(privateKey)), kid: 'idp-key', alg: 'RS256', use: 'sig' }
  const lines: string[] = []
  const clock = new TestClock()
  const stack = await startStack(t, {
    accessTokenTtl: 60,
    idp: { signingKey: jwk },
    backchannelLogout: true,
    config: {
      logLevel: 'trace',
      accessLog: true,
      tracing: { enabled: true },
      // A refresh the IdP cannot answer is given up on at once, not awaited.
      oidc: { lateAnswerWait: 0 },
    },
    gateway: { now: clock.now, logStream: { write: (line: string) => void lines.push(line) } },
  })
  const base = stack.gateway.url
  const secrets = new Map<string, string>([
    ['client secret', CLIENT_SECRET],
    ['session secret', SESSION_SECRET],
  ])
  const keep = (what: string, value: string | null | undefined) => {
    if (value) secrets.set(`${what} (${secrets.size})`, value)
  }
  const keepSession = async (jar: CookieJar) => {
    const session = await stack.gateway.app.gatehouse.stores.sessions.get(
      sessionRefOf(stack.gateway.app, jar.get(base, 'gatehouse')!),
      clock.now(),
    )
    keep('session cookie', jar.get(base, 'gatehouse'))
    keep('session id', session?.id)
    keep('session key', session?.key.toCookie())
    keep('logout handle', session?.logoutHandle)
    keep('access token', session?.tokens.accessToken)
    keep('refresh token', session?.tokens.refreshToken)
    keep('ID token', session?.tokens.idToken)
    return session
  }

  // A sign-in, then its code replayed.
  const alice = await login(base)
  const authorization = new URL(alice.responses[0]!.location!).searchParams
  keep('state', authorization.get('state'))
  keep('nonce', authorization.get('nonce'))
  keep('code', new URL(alice.callbackUrl).searchParams.get('code'))
  await keepSession(alice.jar)
  t.equal((await jarFetch(alice.jar, alice.callbackUrl)).status, 400, 'a replayed code is refused')

  // The IdP sends the browser back with error=, the sign-in's state beside it.
  const denied = new CookieJar()
  const started = await jarFetch(denied, `${base}/auth/login`)
  const deniedState = new URL(started.location!).searchParams.get('state')!
  keep('state', deniedState)
  const description = 'description-quoting-secret-0123456789'
  keep('error_description', description)
  const error = await jarFetch(
    denied,
    `${base}/auth/callback?error=access_denied&error_description=${description}&state=${deniedState}`,
  )
  t.equal(error.status, 400, "the IdP's error= ends the sign-in")

  // API calls: the login's token, a refresh, a client-credentials token.
  t.equal((await apiCall(alice.jar, `${base}/api/orders`)).status, 200)
  clock.advance(61_000)
  t.equal((await apiCall(alice.jar, `${base}/api/orders`)).status, 200, 'refreshed')
  t.equal((await apiCall(alice.jar, `${base}/api/reports`)).status, 200, 'a client token')
  await keepSession(alice.jar)
  for (const seen of stack.upstream.requests) keep('upstream token', seen.authorization?.slice(7))

  // A refresh the IdP cannot answer, then one it refuses.
  const bob = await login(base, { user: 'bob' })
  const bobs = await keepSession(bob.jar)
  stack.idp.setFault('503')
  clock.advance(61_000)
  t.equal((await apiCall(bob.jar, `${base}/api/orders`)).status, 503, 'the IdP is down')
  stack.idp.setFault('ok')
  await stack.idp.forgetRefreshToken(bobs!.tokens.refreshToken!)
  clock.advance(60_000)
  t.equal((await apiCall(bob.jar, `${base}/api/orders`)).status, 401, 'invalid_grant ends the session')

  // Back-channel logout: a forged token, then a valid one.
  const carol = await login(base, { user: 'carol' })
  await keepSession(carol.jar)
  const { privateKey: otherKey } = await generateKeyPair('RS256')
  const logoutToken = (key: CryptoKey) =>
    signLogoutToken(
      { issuer: stack.idp.issuer, audience: CLIENT_ID, key, kid: 'idp-key' },
      {
        sub: 'carol',
        // Issued now by the gateway's clock, which the refreshes above moved on.
        iat: Math.floor(clock.now() / 1000),
      },
    )
  const postLogout = (token: string) =>
    jarFetch(new CookieJar(), `${base}/auth/backchannel-logout`, {
      method: 'POST',
      body: new URLSearchParams({ logout_token: token }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
  const forged = await logoutToken(otherKey)
  keep('forged logout token', forged)
  t.equal((await postLogout(forged)).status, 400, 'a forged logout token is refused')
  const valid = await logoutToken(privateKey)
  keep('logout token', valid)
  t.equal((await postLogout(valid)).status, 200, 'a valid one ends the session')

  // Logout: revocation, and the end-session page with the ID token as its hint.
  const { logoutUrl } = (await apiCall(alice.jar, `${base}/auth/user`)).json<{ logoutUrl: string }>()
  const page = await jarFetch(alice.jar, `${base}${logoutUrl}`)
  t.equal(page.status, 200)
  keep('id_token_hint', parseForm(page.text, base).fields.get('id_token_hint'))
  t.equal(stack.idp.stats.revocations, 1, 'the refresh token was revoked')

  // A cookie that does not open: the sealing's debug line, which must not quote it.
  const cookie = carol.jar.get(base, 'gatehouse')!
  const forgedCookie = `${cookie.slice(0, 8)}${cookie[8] === 'A' ? 'B' : 'A'}${cookie.slice(9)}`
  keep('forged cookie', forgedCookie)
  const refused = await fetch(`${base}/auth/user`, {
    headers: { cookie: `gatehouse=${forgedCookie}`, 'x-csrf': '1' },
  })
  t.equal(refused.status, 401, 'a forged cookie is no session')

  // A browser's trace context, sampled and of its choosing, with oversized entries.
  const browserTrace = '4bf92f3577b34da6a3ce929d0e0e4736'
  const baggage = `user=baggage-secret-value,${'k=v,'.repeat(1_000)}x=y`
  const traced = await apiCall(carol.jar, `${base}/api/public`, {
    headers: {
      traceparent: `00-${browserTrace}-00f067aa0ba902b7-01`,
      tracestate: `vendor=tracestate-secret-value,${'a=b,'.repeat(1_000)}c=d`,
      baggage,
    },
  })
  t.equal(traced.status, 200)
  const upstreamSaw = stack.upstream.requests.at(-1)!
  t.equal(upstreamSaw.headers.baggage, undefined, 'no baggage upstream')
  t.equal(upstreamSaw.headers.tracestate, undefined, 'no tracestate upstream')
  t.notMatch(String(upstreamSaw.headers.traceparent), browserTrace, "nor the browser's trace")
  keep('baggage', 'baggage-secret-value')
  keep('tracestate', 'tracestate-secret-value')
  await stack.close() // flushes the exporter

  const exported = receiver.bodies.join('\n')
  const log = lines.join('')
  t.ok(
    receiver.spans.some(
      (s) => s.kind === SERVER && s.attributes['http.route'] === '/auth/backchannel-logout',
    ),
    'the flows were exported',
  )
  t.match(log, /"level":20/, 'debug lines were written')
  t.notOk(
    receiver.spans.some((s) => s.traceId === browserTrace),
    "no span joins the browser's trace without trustIncoming",
  )
  t.ok(secrets.size > 25, `${secrets.size} values to look for`)
  for (const [what, value] of secrets) {
    t.notOk(exported.includes(value), `no ${what} in any span`)
    t.notOk(log.includes(value), `no ${what} in any log line`)
  }
})

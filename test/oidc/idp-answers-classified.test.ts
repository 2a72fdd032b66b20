/**
 * Every kind of answer the token endpoint can give, at the HTTP seam: what
 * the gateway makes of it (the catalogue error), what the observer hears
 * (answer, verdict, status, reason) and what never reaches a log (the
 * token the call carried, control characters). The same table drives the
 * end-to-end tests against the real IdP (refresh-answers.test.ts); here
 * the bodies are the odd ones a real IdP gives only when it misbehaves.
 */
import t from 'tap'
import { MockAgent } from 'undici'
import { generateDpopKey } from '../../src/dpop/keys.js'
import { verdictOn } from '../../src/oidc/answers.js'
import { OidcClient } from '../../src/oidc/client.js'
import { idpFailureOf } from '../../src/oidc/translate.js'
import type { TokenAudience, TokenSet } from '../../src/types.js'
import { testConfig } from '../helpers/gateway.js'
import { discoveredClient, ISSUER, metadata, tokenAnswer } from '../helpers/mock-idp.js'

const REFRESH_TOKEN = 'rt-the-session-holds-it-0123456789'
const current: TokenSet = {
  accessToken: 'at-old',
  accessTokenExpiresAt: 0,
  refreshToken: REFRESH_TOKEN,
  refreshTokenExpiresAt: undefined,
  idToken: 'id-old',
}

const audience = (resource: string, scopes: string[]): TokenAudience => ({
  key: resource,
  resource,
  scopes,
  label: resource,
  dpop: false,
})

interface Case {
  readonly name: string
  readonly status: number
  readonly body: unknown
  readonly headers?: Record<string, string>
  readonly answer: string
  readonly code: string
  readonly reason: RegExp
}

const cases: Case[] = [
  {
    name: 'invalid_grant ends the session',
    status: 400,
    body: { error: 'invalid_grant', error_description: 'grant revoked' },
    answer: 'invalid_grant',
    code: 'GATEHOUSE_ERR_SESSION_EXPIRED',
    reason: /^HTTP 400 invalid_grant: grant revoked$/,
  },
  {
    name: 'a 401 invalid_grant is still invalid_grant: the code decides, not the status',
    status: 401,
    body: { error: 'invalid_grant' },
    answer: 'invalid_grant',
    code: 'GATEHOUSE_ERR_SESSION_EXPIRED',
    reason: /^HTTP 401 invalid_grant$/,
  },
  {
    name: 'an unknown OAuth code is a definitive refusal',
    status: 400,
    body: { error: 'temporarily_confused' },
    answer: 'other_oauth_error',
    code: 'GATEHOUSE_ERR_SESSION_EXPIRED',
    reason: /^HTTP 400 temporarily_confused$/,
  },
  {
    name: 'invalid_client is the gateway’s own credentials',
    status: 401,
    body: { error: 'invalid_client' },
    answer: 'invalid_client',
    code: 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED',
    reason: /^HTTP 401 invalid_client$/,
  },
  {
    name: 'a 401 with only a Basic challenge refuses the client',
    status: 401,
    body: '',
    headers: { 'www-authenticate': 'Basic realm="idp"' },
    answer: 'unauthorized',
    code: 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED',
    reason: /^HTTP 401 with WWW-Authenticate: Basic$/,
  },
  {
    name: 'a 401 challenge that names invalid_client',
    status: 401,
    body: '',
    headers: { 'www-authenticate': 'Basic error="invalid_client", error_description="bad secret"' },
    answer: 'invalid_client',
    code: 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED',
    reason: /^HTTP 401 with WWW-Authenticate: Basic error="invalid_client": bad secret$/,
  },
  {
    name: 'a 401 DPoP challenge that names no error refuses the proof, not the client',
    status: 401,
    body: '',
    headers: { 'www-authenticate': 'DPoP algs="ES256 EdDSA"' },
    answer: 'invalid_dpop_proof',
    code: 'GATEHOUSE_ERR_DPOP_PROOF_REFUSED',
    reason: /^HTTP 401 with WWW-Authenticate: DPoP$/,
  },
  {
    name: 'a 401 DPoP challenge naming invalid_token refuses the proof, not the client',
    status: 401,
    body: '',
    headers: { 'www-authenticate': 'DPoP error="invalid_token", algs="ES256"' },
    answer: 'invalid_dpop_proof',
    code: 'GATEHOUSE_ERR_DPOP_PROOF_REFUSED',
    reason: /^HTTP 401 with WWW-Authenticate: DPoP error="invalid_token"$/,
  },
  {
    name: 'a 401 dpop challenge (the scheme in any case) naming invalid_request refuses the proof',
    status: 401,
    body: '',
    headers: { 'www-authenticate': 'dpop error="invalid_request"' },
    answer: 'invalid_dpop_proof',
    code: 'GATEHOUSE_ERR_DPOP_PROOF_REFUSED',
    reason: /^HTTP 401 with WWW-Authenticate: DPoP error="invalid_request"$/,
  },
  {
    name: 'of several challenges, the one that names an error says what went wrong',
    status: 401,
    body: '',
    headers: { 'www-authenticate': 'Basic realm="idp", DPoP error="invalid_dpop_proof", algs="ES256"' },
    answer: 'invalid_dpop_proof',
    code: 'GATEHOUSE_ERR_DPOP_PROOF_REFUSED',
    reason: /^HTTP 401 with WWW-Authenticate: DPoP error="invalid_dpop_proof"$/,
  },
  {
    name: 'a 401 DPoP challenge that names invalid_client still says the client is refused',
    status: 401,
    body: '',
    headers: { 'www-authenticate': 'DPoP error="invalid_client", algs="ES256"' },
    answer: 'invalid_client',
    code: 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED',
    reason: /^HTTP 401 with WWW-Authenticate: DPoP error="invalid_client"$/,
  },
  {
    name: 'a 401 without an OAuth body',
    status: 401,
    body: 'Unauthorized',
    headers: { 'content-type': 'text/plain' },
    answer: 'unauthorized',
    code: 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED',
    reason: /^HTTP 401 that is not JSON$/,
  },
  {
    name: 'a 503 page from a proxy in front of the IdP is transient',
    status: 503,
    body: '<html>maintenance</html>',
    headers: { 'content-type': 'text/html' },
    answer: 'server_error',
    code: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
    reason: /^HTTP 503$/,
  },
  {
    name: 'a 500 challenge is a server error whatever it names',
    status: 500,
    body: '',
    headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
    answer: 'server_error',
    code: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
    reason: /^HTTP 500 with WWW-Authenticate: Bearer error="invalid_token"$/,
  },
  {
    name: 'a 400 JSON body without an error code is a refusal that does not say which',
    status: 400,
    body: { message: 'nope' },
    answer: 'bad_request',
    code: 'GATEHOUSE_ERR_SESSION_EXPIRED',
    reason: /^HTTP 400 without an OAuth error body$/,
  },
  {
    name: 'an empty 400 likewise (RFC 6749 §5.2 gives a refusal that status)',
    status: 400,
    body: '',
    answer: 'bad_request',
    code: 'GATEHOUSE_ERR_SESSION_EXPIRED',
    reason: /^HTTP 400 that is not JSON$/,
  },
  {
    name: "a 400 page from a proxy in front of the IdP (header too large) is not the IdP's refusal: the session stays",
    status: 400,
    body: '<html><body>400 Request Header Or Cookie Too Large</body></html>',
    headers: { 'content-type': 'text/html' },
    answer: 'refused',
    code: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
    reason: /^HTTP 400 that is not JSON$/,
  },
  {
    name: 'an OAuth error in JSON is that error whatever Content-Type labels it: it is no page',
    status: 400,
    body: JSON.stringify({ error: 'invalid_grant', error_description: 'grant revoked' }),
    headers: { 'content-type': 'text/html; charset=utf-8' },
    answer: 'invalid_grant',
    code: 'GATEHOUSE_ERR_SESSION_EXPIRED',
    reason: /^HTTP 400 invalid_grant: grant revoked$/,
  },
  {
    name: 'a 401 invalid_client in JSON labelled text/plain refuses the client, as it says',
    status: 401,
    body: JSON.stringify({ error: 'invalid_client' }),
    headers: { 'content-type': 'text/plain' },
    answer: 'invalid_client',
    code: 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED',
    reason: /^HTTP 401 invalid_client$/,
  },
  {
    name: 'a 400 page that only mentions an error is still a page',
    status: 400,
    body: '<html><body>{"error":"invalid_grant"}</body></html>',
    headers: { 'content-type': 'text/html' },
    answer: 'refused',
    code: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
    reason: /^HTTP 400 that is not JSON$/,
  },
  {
    name: 'an empty 403 is refused for no reason given: the grant may live (a WAF says 403 too)',
    status: 403,
    body: '',
    answer: 'refused',
    code: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
    reason: /^HTTP 403 that is not JSON$/,
  },
  {
    name: 'a 429 without an OAuth body asks to come back later',
    status: 429,
    body: '',
    answer: 'retry_later',
    code: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
    reason: /^HTTP 429 that is not JSON$/,
  },
  {
    name: 'a 200 that is not JSON',
    status: 200,
    body: 'ok',
    headers: { 'content-type': 'text/plain' },
    answer: 'unparseable',
    code: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
    reason: /^HTTP 200 that is not JSON$/,
  },
  {
    // GitHub's token endpoint answers its errors so (bad_refresh_token).
    name: 'a 200 with an OAuth error instead of tokens is that error, not an answer that failed validation',
    status: 200,
    body: { error: 'invalid_grant', error_description: 'grant revoked' },
    answer: 'invalid_grant',
    code: 'GATEHOUSE_ERR_SESSION_EXPIRED',
    reason: /^HTTP 200 invalid_grant: grant revoked$/,
  },
  {
    name: 'a 200 with a code no RFC defines is an unknown OAuth error',
    status: 200,
    body: { error: 'bad_refresh_token' },
    answer: 'other_oauth_error',
    code: 'GATEHOUSE_ERR_SESSION_EXPIRED',
    reason: /^HTTP 200 bad_refresh_token$/,
  },
  {
    // RFC 6749 §4.1.2.1: the codes an IdP sends where it cannot send a 5xx.
    // Read as unknown codes they ended the session: newly reachable in a 200
    // and in JSON labelled as a page, which had both been 503s.
    name: 'a 200 whose OAuth error says the IdP is unavailable is an outage, not the grant refused',
    status: 200,
    body: { error: 'temporarily_unavailable', error_description: 'maintenance' },
    answer: 'server_error',
    code: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
    reason: /^HTTP 200 temporarily_unavailable: maintenance$/,
  },
  {
    name: 'a 400 server_error in JSON labelled as a page is an outage',
    status: 400,
    body: JSON.stringify({ error: 'server_error' }),
    headers: { 'content-type': 'text/html' },
    answer: 'server_error',
    code: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
    reason: /^HTTP 400 server_error$/,
  },
  {
    name: 'a 400 temporarily_unavailable is an outage: the code decides, whatever the status',
    status: 400,
    body: { error: 'temporarily_unavailable' },
    answer: 'server_error',
    code: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
    reason: /^HTTP 400 temporarily_unavailable$/,
  },
  {
    name: 'a 200 without an access token fails validation, and a refresh may get a good one next',
    status: 200,
    body: { token_type: 'Bearer', expires_in: 60 },
    answer: 'invalid_answer',
    code: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
    reason: /access_token/,
  },
]

for (const c of cases) {
  t.test(`refresh: ${c.name}`, async (t) => {
    const { idp, oidc, failures } = await discoveredClient(t)
    const sent = tokenAnswer(idp, c.status, c.body, c.headers)
    const err = await oidc.refresh(current).then(
      () => t.fail('the refresh succeeded'),
      (e: unknown) => e,
    )
    t.equal((await sent).body.get('refresh_token'), REFRESH_TOKEN, 'the refresh token was sent')
    t.match(err, { code: c.code })
    const failure = idpFailureOf(err)
    t.match(failure, { operation: 'refresh', answer: c.answer })
    // A 200 that fails validation is judged on its content, not its status.
    t.equal(failure?.status, c.answer === 'invalid_answer' ? undefined : c.status)
    t.equal(failure?.verdict, verdictOn('refresh', failure!.answer as never), 'the verdict is the table’s')
    t.match(failure?.reason, c.reason)
    t.same(failures, [failure], 'the observer heard it once')
  })
}

t.test('the refresh token an IdP echoes in its description never reaches the failure', async (t) => {
  const { idp, oidc, failures } = await discoveredClient(t)
  void tokenAnswer(idp, 400, {
    error: 'invalid_grant',
    error_description: `token ${REFRESH_TOKEN} is\nrevoked\u0007 ${'x'.repeat(400)}`,
  })
  await t.rejects(oidc.refresh(current), { code: 'GATEHOUSE_ERR_SESSION_EXPIRED' })
  const [failure] = failures
  t.notMatch(failure?.reason, REFRESH_TOKEN)
  t.notMatch(failure?.description, REFRESH_TOKEN)
  t.match(failure?.description, /^token \[redacted\] is revoked {2}x+…$/, 'redacted, on one line, bounded')
  t.ok(failure!.description!.length <= 301)
})

t.test('a refresh token the IdP echoes percent- or form-encoded is redacted in every form', async (t) => {
  const { idp, oidc, failures } = await discoveredClient(t)
  // Refresh tokens are often base64: `/`, `+` and `=` are what an encoder changes.
  const refreshToken = 'rt/abc+def=0123 4567~x'
  void tokenAnswer(idp, 400, {
    error: 'invalid_grant',
    error_description: [
      `component ${encodeURIComponent(refreshToken)}`,
      `form ${new URLSearchParams({ t: refreshToken }).toString().slice(2)}`,
      `plus ${encodeURIComponent(refreshToken).replaceAll('%20', '+')}`,
      `lower ${encodeURIComponent(refreshToken).replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase())}`,
      `raw ${refreshToken}`,
    ].join(', '),
  })
  await t.rejects(oidc.refresh({ ...current, refreshToken }), { code: 'GATEHOUSE_ERR_SESSION_EXPIRED' })
  t.equal(
    failures[0]?.description,
    'component [redacted], form [redacted], plus [redacted], lower [redacted], raw [redacted]',
  )
  t.notMatch(failures[0]?.reason, /rt%2F|rt\//i)
})

t.test('line separators and bidi or other format characters never reach the log line', async (t) => {
  const { idp, oidc, failures } = await discoveredClient(t)
  const hidden = ['\u2028', '\u2029', '\u202a', '\u202e', '\u2066', '\u2069', '\u200b', '\ufeff', '\u0085']
  void tokenAnswer(idp, 400, {
    error: `invalid_grant${hidden.join('')}`,
    error_description: hidden.map((c, i) => `${i}${c}${c}`).join(''),
  })
  await t.rejects(oidc.refresh(current), { code: 'GATEHOUSE_ERR_SESSION_EXPIRED' })
  const [failure] = failures
  // Compared spelled out: a raw U+2028 in a failing diff would break the TAP stream itself.
  const visible = (text = '') =>
    text.replace(/[^\x20-\x7e]/gu, (c) => `<U+${c.codePointAt(0)!.toString(16).toUpperCase()}>`)
  t.equal(visible(failure?.oauthError), 'invalid_grant ', 'a run becomes one space')
  t.equal(visible(failure?.description), '0 1 2 3 4 5 6 7 8 ')
  t.equal(visible(failure?.reason), 'HTTP 400 invalid_grant : 0 1 2 3 4 5 6 7 8 ')
})

t.test('the client secret an IdP echoes is redacted too', async (t) => {
  const { idp, oidc, failures, config } = await discoveredClient(t)
  void tokenAnswer(idp, 401, {
    error: 'invalid_client',
    error_description: `bad ${config.oidc.clientSecret}`,
  })
  await t.rejects(oidc.refresh(current), { code: 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED' })
  t.equal(failures[0]?.description, 'bad [redacted]')
})

t.test(
  'the client secret an IdP puts in its error code, in a challenge or a body, is redacted',
  async (t) => {
    const { idp, oidc, failures, config } = await discoveredClient(t)
    const secret = config.oidc.clientSecret!
    void tokenAnswer(idp, 401, '', { 'www-authenticate': `Basic error="secret ${secret} bad"` })
    await t.rejects(oidc.refresh(current), { code: 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED' })
    void tokenAnswer(idp, 400, { error: `secret ${secret} bad` })
    await t.rejects(oidc.refresh(current), { code: 'GATEHOUSE_ERR_SESSION_EXPIRED' })
    t.match(failures, [
      {
        answer: 'unauthorized',
        oauthError: 'secret [redacted] bad',
        reason: 'HTTP 401 with WWW-Authenticate: Basic error="secret [redacted] bad"',
      },
      {
        answer: 'other_oauth_error',
        oauthError: 'secret [redacted] bad',
        reason: 'HTTP 400 secret [redacted] bad',
      },
    ])
    t.notOk(JSON.stringify(failures).includes(secret), 'nowhere in what is recorded')
  },
)

t.test('the code and verifier of a refused code exchange, echoed, are redacted too', async (t) => {
  const { idp, oidc, failures } = await discoveredClient(t)
  const code = 'an-authorization-code-0123456789'
  const codeVerifier = 'a-pkce-code-verifier-0123456789-0123456789'
  void tokenAnswer(idp, 400, {
    error: 'invalid_grant',
    error_description: `code ${code} does not match ${codeVerifier}`,
  })
  const login = { state: 'st', nonce: 'n', codeVerifier, returnTo: '/' }
  await t.rejects(oidc.callback(new URL(`https://app.test/auth/callback?code=${code}&state=st`), login), {
    code: 'GATEHOUSE_ERR_LOGIN_FAILED',
  })
  t.equal(failures[0]?.description, 'code [redacted] does not match [redacted]')
})

t.test('a 401 DPoP challenge naming use_dpop_nonce, after the one retry, keeps its own row', async (t) => {
  const { idp, oidc, failures } = await discoveredClient(t)
  const challenge = { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': 'nonce-0123456789' }
  void tokenAnswer(idp, 401, '', challenge)
  void tokenAnswer(idp, 401, '', challenge)
  // The retry is for a request that carried a proof: one of the session's key.
  await t.rejects(oidc.refresh(current, undefined, await generateDpopKey('ES256')), {
    code: 'GATEHOUSE_ERR_DPOP_PROOF_REFUSED',
    message: /use_dpop_nonce/,
  })
  t.match(failures, [{ answer: 'use_dpop_nonce', verdict: 'unavailable', oauthError: 'use_dpop_nonce' }])
})

t.test('a connection the IdP drops is a network failure, transient', async (t) => {
  const { idp, oidc, failures } = await discoveredClient(t)
  idp
    .intercept({ path: '/token', method: 'POST' })
    .replyWithError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))
  await t.rejects(oidc.refresh(current), { code: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE' })
  t.match(failures[0], { answer: 'network', verdict: 'unavailable', reason: /ECONNRESET/ })
})

t.test('route tokens: invalid_target and invalid_scope refuse the route, the session stays', async (t) => {
  for (const error of ['invalid_target', 'invalid_scope']) {
    const { idp, oidc, failures } = await discoveredClient(t)
    const sent = tokenAnswer(idp, 400, { error })
    await t.rejects(oidc.refresh(current, audience('https://api.test', ['read', 'write'])), {
      code: 'GATEHOUSE_ERR_RESOURCE_REFUSED',
    })
    const { body } = await sent
    t.equal(body.get('resource'), 'https://api.test', 'RFC 8707 §2.2: the resource is asked for')
    t.equal(body.get('scope'), 'read write')
    t.match(failures[0], { operation: 'route_refresh', answer: error, verdict: 'route_refused' })
  }
})

t.test('route tokens: invalid_grant still ends the session, whichever route asked', async (t) => {
  const { idp, oidc } = await discoveredClient(t)
  void tokenAnswer(idp, 400, { error: 'invalid_grant' })
  await t.rejects(oidc.refresh(current, audience('https://api.test', [])), {
    code: 'GATEHOUSE_ERR_SESSION_EXPIRED',
  })
})

t.test('client credentials: a refused scope refuses the route, a 503 is unavailable', async (t) => {
  const { idp, oidc, failures } = await discoveredClient(t)
  const sent = tokenAnswer(idp, 400, { error: 'invalid_scope' })
  await t.rejects(oidc.clientCredentials(['reports']), { code: 'GATEHOUSE_ERR_CLIENT_TOKEN_REFUSED' })
  t.equal((await sent).body.get('grant_type'), 'client_credentials')
  t.equal((await sent).body.get('scope'), 'reports')
  void tokenAnswer(idp, 503, 'busy', { 'content-type': 'text/plain' })
  await t.rejects(oidc.clientCredentials([]), { code: 'GATEHOUSE_ERR_CLIENT_TOKEN_UNAVAILABLE' })
  t.same(
    failures.map((f) => [f.operation, f.verdict]),
    [
      ['client_credentials', 'route_refused'],
      ['client_credentials', 'unavailable'],
    ],
  )
})

t.test('a token-endpoint call that succeeds tells the observer the credentials work', async (t) => {
  const { idp, oidc, accepted } = await discoveredClient(t)
  void tokenAnswer(idp, 200, { access_token: 'at-client', token_type: 'Bearer', expires_in: 120 })
  const token = await oidc.clientCredentials([])
  t.equal(token.accessToken, 'at-client')
  t.same(accepted, ['client_credentials'])
})

t.test('revocation: sent with its hint; a failure is best effort; no endpoint, no call', async (t) => {
  const { idp, oidc, failures, accepted } = await discoveredClient(t)
  let body: URLSearchParams | undefined
  idp.intercept({ path: '/revoke', method: 'POST' }).reply((request) => {
    body = new URLSearchParams(String(request.body))
    return { statusCode: 200, data: '' }
  })
  await oidc.revoke(REFRESH_TOKEN)
  t.equal(body?.get('token'), REFRESH_TOKEN)
  t.equal(body?.get('token_type_hint'), 'refresh_token', 'RFC 7009 §2.1')
  t.same(accepted, ['revocation'])

  idp.intercept({ path: '/revoke', method: 'POST' }).reply(503, 'down')
  await t.rejects(oidc.revoke(REFRESH_TOKEN), { code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE' })
  t.match(failures[0], { operation: 'revocation', verdict: 'logout_proceeds' })

  const without = await discoveredClient(t, { metadata: metadata({ revocation_endpoint: undefined }) })
  await without.oidc.revoke(REFRESH_TOKEN)
  t.same(without.failures, [], 'nothing asked, nothing failed')
})

t.test('before discovery, every call is unavailable and nothing is sent', async (t) => {
  const agent = new MockAgent()
  agent.disableNetConnect()
  t.teardown(() => agent.close())
  const oidc = new OidcClient(testConfig({ port: 8080, issuer: ISSUER, routes: [] }), Date.now, {}, agent)
  t.teardown(() => oidc.close())
  await t.rejects(oidc.refresh(current), {
    code: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
    message: /not been discovered/,
  })
  await t.rejects(oidc.clientCredentials([]), { code: 'GATEHOUSE_ERR_CLIENT_TOKEN_UNAVAILABLE' })
  await t.rejects(oidc.authorizationUrl('/'), { code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE' })
  t.equal(oidc.discovered, false)
  t.equal(oidc.endSessionRequest('id'), undefined)
})

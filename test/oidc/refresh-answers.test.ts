/**
 * Every row of the classification table (src/oidc/answers.ts), as the
 * answer to a refresh of the login token, against the real dev IdP: what
 * the API call gets, whether the session survives (and /auth/user with it),
 * the log line the operator reads and the metric that counts it. Answers
 * oidc-provider gives by itself are caused, not canned: a revoked or
 * forgotten refresh token, a 503, a reset, a hang. The others come from a
 * canned answer at the IdP's edge (`idp.answer`), decided before
 * oidc-provider sees the request.
 */

import t, { type Test } from 'tap'
import type { CannedAnswer, DevIdpOptions } from '../../dev/idp.js'
import type { IdpAnswer } from '../../src/oidc/answers.js'
import { verdictOn } from '../../src/oidc/answers.js'
import { sessionLogId } from '../../src/session/log-id.js'
import { sessionRefOf } from '../helpers/app.js'
import { apiCall, login } from '../helpers/login.js'
import { type ObservedStack, startObservedStack } from '../helpers/observed-stack.js'

interface Row {
  readonly answer: IdpAnswer
  /** Makes the IdP give this answer to the session's next refresh. */
  readonly arrange: (stack: ObservedStack, refreshToken: string) => Promise<void> | void
  readonly idp?: Partial<Omit<DevIdpOptions, 'clients'>>
  readonly idpTimeout?: number
  /** Sessions whose tokens are DPoP-bound (oidc.dpop, and the IdP binds them). */
  readonly dpop?: boolean
  readonly status: number
  readonly error: string
  readonly level: number
  readonly msg: RegExp
  readonly outcome: string
  /** What the refresh line says the IdP answered. */
  readonly said: Record<string, unknown>
}

const canned = (answer: CannedAnswer) => (stack: ObservedStack) =>
  stack.idp.answer('token', { grantType: 'refresh_token', ...answer })
const oauthError = (error: string, status = 400) =>
  canned({ status, body: { error, error_description: `${error} from the test` } })

const ended = { status: 401, error: 'session_expired' }
const unavailable = {
  status: 503,
  error: 'token_refresh_unavailable',
  level: 40,
  msg: /^access token refresh failed: identity provider unavailable$/,
  outcome: 'unavailable',
}
const refused = {
  status: 500,
  error: 'idp_client_refused',
  level: 40,
  msg: /the identity provider refused the gateway's client credentials; the session stays/,
  outcome: 'client_refused',
}

// RFC 9449 §5 and §8: the IdP refused the gateway's proof, not the grant;
// the refresh token was not spent, so the session stays.
const proofRefused = {
  dpop: true,
  status: 503,
  error: 'dpop_proof_refused',
  level: 40,
  msg: /^access token refresh failed: the identity provider refused the gateway's DPoP proof; the session stays$/,
  outcome: 'dpop_proof_refused',
}

const rows: Row[] = [
  {
    answer: 'invalid_grant',
    // The grant dies at the IdP: an administrator revoked it.
    arrange: async (stack, token) => {
      await stack.gateway.app.gatehouse.oidc.revoke(token)
    },
    ...ended,
    level: 30,
    msg: /^refresh token refused \(invalid_grant\): session ended$/,
    outcome: 'invalid_grant',
    said: { status: 400, oauthError: 'invalid_grant', oauthErrorDescription: 'grant request is invalid' },
  },
  {
    answer: 'invalid_request',
    // The OP's cleanup job removed the token, and the OP says invalid_request for it.
    idp: { quirks: { unknownRefreshTokenInvalidRequest: true } },
    arrange: (stack, token) => stack.idp.forgetRefreshToken(token),
    ...ended,
    level: 40,
    msg: /^refresh token refused \(invalid_request\): session ended$/,
    outcome: 'invalid_request',
    said: { status: 400, oauthError: 'invalid_request', oauthErrorDescription: 'Unknown refresh token' },
  },
  {
    answer: 'invalid_scope',
    arrange: oauthError('invalid_scope'),
    ...ended,
    level: 40,
    msg: /^refresh token refused \(invalid_scope\): session ended$/,
    outcome: 'invalid_scope',
    said: { oauthError: 'invalid_scope', oauthErrorDescription: 'invalid_scope from the test' },
  },
  {
    answer: 'unsupported_grant_type',
    arrange: oauthError('unsupported_grant_type'),
    ...ended,
    level: 40,
    msg: /^refresh token refused \(unsupported_grant_type\): session ended$/,
    outcome: 'unsupported_grant_type',
    said: { oauthError: 'unsupported_grant_type' },
  },
  {
    answer: 'invalid_target',
    arrange: oauthError('invalid_target'),
    status: 403,
    error: 'resource_refused',
    level: 30,
    msg: /^resource refused \(invalid_target\): this route answers 403, the session stays$/,
    outcome: 'invalid_target',
    said: { oauthError: 'invalid_target' },
  },
  {
    answer: 'other_oauth_error',
    arrange: oauthError('token_revoked_by_policy', 403),
    ...ended,
    level: 40,
    msg: /^refresh token refused \(token_revoked_by_policy\): session ended$/,
    outcome: 'other_oauth_error',
    said: { status: 403, oauthError: 'token_revoked_by_policy' },
  },
  {
    answer: 'invalid_client',
    // oidc-provider's own answer to a wrong Basic secret, word for word.
    arrange: canned({
      status: 401,
      headers: { 'www-authenticate': 'Basic realm="idp", error="invalid_client"' },
      body: { error: 'invalid_client', error_description: 'client authentication failed' },
    }),
    ...refused,
    said: { status: 401, oauthError: 'invalid_client' },
  },
  {
    answer: 'unauthorized_client',
    arrange: oauthError('unauthorized_client'),
    ...refused,
    said: { status: 400, oauthError: 'unauthorized_client' },
  },
  {
    answer: 'unauthorized',
    // A Basic-auth filter in front of the token endpoint: a bare challenge
    // and a page. (An OP that compares Basic credentials raw answered the
    // same challenge in the field beside an invalid_client body, which
    // decides: the invalid_client row, bare-challenge-beside-an-oauth-error.)
    arrange: canned({
      status: 401,
      headers: { 'www-authenticate': 'Basic' },
      body: 'Unauthorized',
    }),
    ...refused,
    said: { status: 401, reason: 'HTTP 401 with WWW-Authenticate: Basic' },
  },
  {
    answer: 'use_dpop_nonce',
    // Asked for a nonce again after the retry with its nonce: IdP nodes whose nonce secrets differ.
    arrange: canned({
      status: 400,
      headers: { 'dpop-nonce': 'nonce-of-the-test-0123456789' },
      body: { error: 'use_dpop_nonce', error_description: 'nonce is required in the DPoP proof' },
    }),
    ...proofRefused,
    said: { status: 400, oauthError: 'use_dpop_nonce' },
  },
  {
    answer: 'invalid_dpop_proof',
    // oidc-provider's answer to a proof it refuses, sent as a 401 challenge (RFC 9449 §7.1 shape).
    arrange: canned({
      status: 401,
      headers: { 'www-authenticate': 'DPoP error="invalid_dpop_proof", algs="ES256"' },
      body: { error: 'invalid_dpop_proof', error_description: 'DPoP proof iat is not recent enough' },
    }),
    ...proofRefused,
    said: { status: 401, oauthError: 'invalid_dpop_proof' },
  },
  {
    answer: 'server_error',
    arrange: (stack) => stack.idp.setFault('503'),
    ...unavailable,
    said: { reason: 'HTTP 503' },
  },
  {
    answer: 'timeout',
    idpTimeout: 400,
    arrange: (stack) => stack.idp.setFault('hang'),
    ...unavailable,
    said: { reason: 'timed out after 400 ms (oidc.timeout)' },
  },
  {
    answer: 'network',
    arrange: (stack) => stack.idp.setFault('reset'),
    ...unavailable,
    said: { reason: /^connection closed by the peer|^ECONNRESET/ },
  },
  {
    answer: 'bad_request',
    // Glewlwyd's answer to a revoked, forgotten or replayed refresh token: no body at all.
    arrange: canned({ status: 400 }),
    ...ended,
    level: 40,
    msg: /^refresh token refused \(bad_request\): session ended$/,
    outcome: 'bad_request',
    said: { status: 400, reason: 'HTTP 400 that is not JSON' },
  },
  {
    answer: 'refused',
    arrange: canned({ status: 404, body: '<html><body>Not found</body></html>' }),
    ...unavailable,
    said: { status: 404, reason: 'HTTP 404 that is not JSON' },
  },
  {
    answer: 'unparseable',
    arrange: canned({ status: 302, body: '' }),
    ...unavailable,
    said: { status: 302, reason: /^HTTP 302 / },
  },
  {
    answer: 'retry_later',
    arrange: canned({ status: 429, body: 'slow down' }),
    ...unavailable,
    said: { status: 429, reason: 'HTTP 429 that is not JSON' },
  },
  {
    answer: 'retry_later',
    // Auth0's rate limit: an OAuth body, and a code no RFC defines.
    arrange: oauthError('too_many_requests', 429),
    ...unavailable,
    said: { status: 429, oauthError: 'too_many_requests' },
  },
  {
    answer: 'retry_later',
    // A challenge naming an error decides a 401's answer, never a 429's.
    arrange: canned({
      status: 429,
      headers: { 'www-authenticate': 'Bearer error="rate_limited"', 'retry-after': '30' },
      body: { error: 'too_many_requests' },
    }),
    ...unavailable,
    said: { status: 429, oauthError: 'rate_limited' },
  },
  {
    answer: 'retry_later',
    arrange: canned({
      status: 408,
      headers: { 'www-authenticate': 'DPoP error="invalid_request"' },
      body: '',
    }),
    ...unavailable,
    said: { status: 408 },
  },
  {
    answer: 'server_error',
    // RFC 6749 §4.1.2.1's code for an IdP down for maintenance, at its token endpoint.
    arrange: oauthError('temporarily_unavailable', 503),
    ...unavailable,
    said: { status: 503, reason: 'HTTP 503' },
  },
  {
    answer: 'invalid_answer',
    arrange: canned({ status: 200, body: { token_type: 'Bearer', expires_in: 60 } }),
    ...unavailable,
    said: { reason: /"access_token"/ },
  },
]

async function refreshAnswered(t: Test, row: Row) {
  const stack = await startObservedStack(t, {
    accessTokenTtl: 60,
    ...(row.idp ? { idp: row.idp } : {}),
    config: {
      ...(row.idpTimeout ? { idpTimeout: row.idpTimeout } : {}),
      ...(row.dpop ? { oidc: { dpop: true } } : {}),
    },
    ...(row.dpop ? { client: { dpopBoundAccessTokens: true } } : {}),
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  const store = stack.gateway.app.gatehouse.stores.sessions
  const ref = sessionRefOf(stack.gateway.app, jar.get(base, 'gatehouse')!)
  const { id } = ref
  const session = (await store.get(ref, stack.clock.now()))!
  await row.arrange(stack, session.tokens.refreshToken!)
  stack.clock.advance(61_000)
  const api = await apiCall(jar, `${base}/api/orders`)
  return {
    stack,
    id,
    session,
    api,
    user: await apiCall(jar, `${base}/auth/user`),
    kept: (await store.get(ref, stack.clock.now())) !== undefined,
  }
}

for (const row of rows) {
  const verdict = verdictOn('refresh', row.answer)
  t.test(`refresh answered ${row.answer}: ${verdict}`, async (t) => {
    const { stack, id, session, api, user, kept } = await refreshAnswered(t, row)
    t.equal(api.status, row.status)
    t.equal(api.json().error, row.error)
    const over = verdict === 'session_over'
    t.equal(kept, !over, over ? 'the session is deleted' : 'the session stays')
    t.equal(user.status, over ? 401 : 200, '/auth/user agrees, so the SPA wrapper redirects')
    if (over) t.match(api.headers.getSetCookie().join('\n'), /gatehouse=;/, 'the cookie is cleared')
    if (row.status === 503) t.ok(Number(api.headers.get('retry-after')) > 0, 'Retry-After')

    const line = stack.lines.find((l) => l.session === sessionLogId(id))
    t.match(
      line,
      { level: row.level, msg: row.msg, ...row.said },
      'one refresh line says what the IdP answered',
    )
    t.notOk(JSON.stringify(stack.lines).includes(session.tokens.refreshToken!), 'never the refresh token')
    t.match(await stack.metrics('gatehouse_token_refreshes_total{'), [
      `gatehouse_token_refreshes_total{outcome="${row.outcome}",resource="",idp="default"} 1`,
    ])
  })
}

t.test('an IdP that echoes the refresh token in error_description: the log has it redacted', async (t) => {
  const { stack, id, session } = await refreshAnswered(t, {
    ...rows[1]!,
    idp: {},
    arrange: (stack, token) =>
      stack.idp.answer('token', {
        grantType: 'refresh_token',
        status: 400,
        body: { error: 'invalid_request', error_description: `unknown refresh token ${token}` },
      }),
  })
  const line = stack.lines.find((l) => l.session === sessionLogId(id))
  t.match(line, { oauthErrorDescription: 'unknown refresh token [redacted]' })
  t.notOk(JSON.stringify(stack.lines).includes(session.tokens.refreshToken!))
})

/**
 * How Gatehouse takes every answer an identity provider can give, for every
 * call it makes: one table, as data. `translate.ts` recognises the answer
 * and looks the verdict up here; docs/troubleshooting.md prints the same
 * table, and a test keeps the two equal.
 */

/** The calls Gatehouse makes to the IdP. */
export type IdpOperation =
  | 'code_exchange'
  | 'userinfo'
  | 'refresh'
  | 'route_refresh'
  | 'unbound_route_refresh'
  | 'token_exchange'
  | 'client_credentials'
  | 'par'
  | 'revocation'
  | 'discovery'

/** In the order of the table's columns. */
export const IDP_OPERATIONS: readonly IdpOperation[] = [
  'code_exchange',
  'userinfo',
  'refresh',
  'route_refresh',
  'unbound_route_refresh',
  'token_exchange',
  'client_credentials',
  'par',
  'revocation',
  'discovery',
]

/**
 * What the IdP answered, as far as it matters. The OAuth codes are RFC 6749
 * §5.2's, RFC 8707 §2's and RFC 9449's (§5, §8); `other_oauth_error` is any
 * other `error` in a 4xx JSON body, unknown codes included, but in a 408 or
 * 429 (`retry_later`) or a 5xx (`server_error`), whose status decides;
 * the codes `server_error` and `temporarily_unavailable` (RFC 6749
 * §4.1.2.1) are `server_error` at any status. A code is read from a JSON
 * body whatever its Content-Type, and from a 2xx that carries one instead
 * of its answer (translate.ts), and `other_oauth_error` from a 401
 * challenge other than DPoP's that names `invalid_token` (RFC 6750 §3.1);
 * `client_certificate_refused` is a TLS alert that refused the gateway's
 * client certificate in the handshake (tls/handshake-errors.ts).
 */
export type IdpAnswer =
  | 'invalid_grant'
  | 'invalid_request'
  | 'invalid_scope'
  | 'unsupported_grant_type'
  | 'invalid_target'
  | 'other_oauth_error'
  | 'use_dpop_nonce'
  | 'invalid_dpop_proof'
  | 'invalid_client'
  | 'unauthorized_client'
  | 'unauthorized'
  | 'client_certificate_refused'
  | 'bad_request'
  | 'refused'
  | 'retry_later'
  | 'server_error'
  | 'timeout'
  | 'network'
  | 'unparseable'
  | 'invalid_answer'

/**
 * What follows from an answer:
 * - `session_over`: the grant is gone; 401 `session_expired`, the session is deleted.
 * - `route_refused`: only this route's token is refused; 403, the session stays.
 * - `client_refused`: the gateway's own credentials are refused, a configuration
 *   error; 500 `idp_client_refused`, logged at error with a hint.
 * - `unavailable`: transient; 503 with Retry-After, the session stays (for at
 *   most `tokens.unavailableLimit` on a refresh).
 * - `login_failed`: this login cannot complete; 400 page.
 * - `logout_proceeds`: revocation is best effort; the logout completes.
 */
export type Verdict =
  | 'session_over'
  | 'route_refused'
  | 'client_refused'
  | 'unavailable'
  | 'login_failed'
  | 'logout_proceeds'

type Row = Readonly<Record<IdpOperation, Verdict>>

/** One verdict for every operation but those named. */
function row(verdict: Verdict, except: Partial<Record<IdpOperation, Verdict>> = {}): Row {
  return Object.fromEntries(IDP_OPERATIONS.map((op) => [op, except[op] ?? verdict])) as Row
}

/**
 * The verdicts a definitive OAuth error gets: the login cannot finish, the
 * refresh token is dead (RFC 6749 §5.2: the grant was refused), a client
 * route's token is refused, revocation is done with.
 */
const definitive = {
  code_exchange: 'login_failed',
  userinfo: 'login_failed',
  par: 'login_failed',
  refresh: 'session_over',
  route_refresh: 'session_over',
  // A `dpop: false` route's token asked for without a proof, for a session
  // whose grant is DPoP-bound: an IdP that requires bound tokens (RFC 9449
  // §5.2, `dpop_bound_access_tokens`) refuses it for the missing proof, with
  // invalid_grant at oidc-provider, though the refresh token is alive. The
  // route is refused; the session's next own refresh finds out for itself
  // if the grant is gone.
  unbound_route_refresh: 'route_refused',
  // RFC 8693 §2.2.2: the exchange spends nothing of the session's; even
  // invalid_grant speaks of the subject token for this one audience (Entra
  // ID answers it when the user has not consented to the API), and the
  // session's next refresh finds out for itself if the grant is gone.
  token_exchange: 'route_refused',
  client_credentials: 'route_refused',
  revocation: 'logout_proceeds',
  // oauth4webapi reads no OAuth error body from a metadata answer; kept for a total table.
  discovery: 'unavailable',
} as const satisfies Row

// Userinfo authenticates the access token, not the client (OIDC Core §5.3.1):
// a 401 there ends the login, it says nothing about the gateway's credentials.
const refused = row('client_refused', { discovery: 'unavailable', userinfo: 'login_failed' })
const transient = row('unavailable', { revocation: 'logout_proceeds' })
/** Transient, but for a login: it cannot finish on this answer, and "retry later" would mislead. */
const loginFails = row('unavailable', {
  code_exchange: 'login_failed',
  userinfo: 'login_failed',
  par: 'login_failed',
  revocation: 'logout_proceeds',
})
// RFC 9449: the IdP refused the gateway's DPoP proof (`invalid_dpop_proof`),
// or asked for a nonce again after the one retry with its nonce
// (`use_dpop_nonce`: IdP nodes that do not share their nonce secret). It
// looked at the proof before the grant, so the refresh token is unspent
// and the session stays; the answer says what to check, not "unavailable".
// A `dpop: false` route's own token goes without a proof: an IdP that says
// the proof is missing or wrong asks for what the route will never send,
// as with invalid_grant there (`definitive`), so only the route is refused.
const proofRefused = row('unavailable', {
  code_exchange: 'login_failed',
  userinfo: 'login_failed',
  par: 'login_failed',
  unbound_route_refresh: 'route_refused',
  revocation: 'logout_proceeds',
})

/**
 * The classification. Route tokens (`route_refresh`, a `resource` and/or
 * `scopes` of their own): `invalid_target` and `invalid_scope` refuse that
 * resource or scope only (RFC 8707 §2, RFC 6749 §5.2), so only the route is
 * over; any other definitive error says the refresh token itself is dead,
 * which ends the session whichever route asked.
 */
export const CLASSIFICATION: Readonly<Record<IdpAnswer, Row>> = {
  invalid_grant: definitive,
  invalid_request: definitive,
  invalid_scope: { ...definitive, route_refresh: 'route_refused' },
  unsupported_grant_type: definitive,
  // RFC 8707 §2: the resource is refused, not the grant.
  invalid_target: { ...definitive, refresh: 'route_refused', route_refresh: 'route_refused' },
  other_oauth_error: definitive,
  use_dpop_nonce: proofRefused,
  invalid_dpop_proof: proofRefused,
  invalid_client: refused,
  // At an exchange, the client is known and not allowed this audience or
  // grant (RFC 8693 §2.2.2 refers to RFC 6749 §5.2): only the route is refused.
  unauthorized_client: { ...refused, token_exchange: 'route_refused' },
  unauthorized: refused,
  // RFC 8446 §6.2: the IdP's TLS server refused the gateway's certificate
  // before it read a request. The gateway's own credential (RFC 8705 §2),
  // and a fault a retry does not mend, at userinfo's mTLS alias too, where
  // nothing of the access token was looked at. Discovery stays an outage,
  // as for every refusal: it proves nothing of the client.
  client_certificate_refused: row('client_refused', { discovery: 'unavailable' }),
  // RFC 6749 §5.2's refusal status without the error it requires: taken as
  // an unknown OAuth code. Glewlwyd answers a dead refresh token so; as
  // "unavailable" it cost a 503 per request until tokens.unavailableLimit.
  bad_request: definitive,
  // Any other 4xx without an error: refused (RFC 9110 §15.5), but nothing
  // says the grant is gone, and a WAF's 403 must not end every session.
  // A login cannot finish on it: a 400 page that says why, not "retry".
  // At PAR no user is involved yet, only the client and its settings:
  // Glewlwyd refuses a client there with a bare 403, and every login fails
  // until an operator acts, so it is said as the client refused.
  refused: { ...loginFails, par: 'client_refused' },
  // RFC 9110 §15.5.9, RFC 6585 §4: come back later. The status decides,
  // whatever the body's code: Auth0 rate-limits with 429 too_many_requests,
  // which read as an unknown OAuth code ended every session it met.
  retry_later: transient,
  // The IdP failed, whatever its body says (temporarily_unavailable, RFC
  // 6749 §4.1.2.1); oauth4webapi reads no OAuth error from a 5xx anyway.
  // Those codes say the same in a 4xx or a 200 (translate.ts).
  server_error: transient,
  timeout: transient,
  network: transient,
  unparseable: transient,
  // A 200 that fails validation: a login cannot trust it; a refresh may get a good one next time.
  invalid_answer: loginFails,
}

/** The verdict on `answer` to `operation`. */
export function verdictOn(operation: IdpOperation, answer: IdpAnswer): Verdict {
  return CLASSIFICATION[answer][operation]
}

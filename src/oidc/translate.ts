import * as oauth from 'oauth4webapi'
import { type ErrorCode, type GatehouseError, gatehouseError, isGatehouseError } from '../errors.js'
import { type Budgets, closedUnanswered, failureCode, isTimeout, networkCause } from '../network-cause.js'
import { certificateRefusal } from '../tls/handshake-errors.js'
import { type IdpAnswer, type IdpOperation, type Verdict, verdictOn } from './answers.js'
import { carriesUsableNonce } from './dpop.js'
import { isReasonPhrase, redirectTarget } from './http-answers.js'
import { IdTokenIssuedAhead } from './issued-at.js'
import { oauthErrorOf } from './oauth-error-body.js'
import { type CallSecrets, redactEchoes } from './redact.js'
import { RefreshedIdTokenOfAnotherUser } from './refreshed-id-token.js'
import { type HeaderReader, honouring, retryAfterOfAnswer } from './retry-after.js'
import { staleAuthTime } from './stale-auth-time.js'
import { type TokenKind, TokenTooLarge } from './token-size.js'
import { explainedMessage } from './unexpected-alg.js'
import { unknownTokenType } from './unknown-token-type.js'
import { UnsendableAccessToken } from './unsendable-token.js'

export type { IdpAnswer, IdpOperation, Verdict } from './answers.js'

const unavailable: Record<IdpOperation, ErrorCode> = {
  refresh: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
  route_refresh: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
  unbound_route_refresh: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
  token_exchange: 'GATEHOUSE_ERR_TOKEN_EXCHANGE_UNAVAILABLE',
  client_credentials: 'GATEHOUSE_ERR_CLIENT_TOKEN_UNAVAILABLE',
  code_exchange: 'GATEHOUSE_ERR_IDP_UNAVAILABLE',
  userinfo: 'GATEHOUSE_ERR_IDP_UNAVAILABLE',
  discovery: 'GATEHOUSE_ERR_IDP_UNAVAILABLE',
  revocation: 'GATEHOUSE_ERR_IDP_UNAVAILABLE',
  par: 'GATEHOUSE_ERR_IDP_UNAVAILABLE',
}

/** RFC 6749 §5.2, RFC 8707 §2 and RFC 9449 codes with a row of their own in the table. */
const OAUTH_ANSWERS: ReadonlySet<string> = new Set([
  'use_dpop_nonce',
  'invalid_dpop_proof',
  'invalid_grant',
  'invalid_request',
  'invalid_scope',
  'unsupported_grant_type',
  'invalid_target',
  'invalid_client',
  'unauthorized_client',
])

/**
 * RFC 6749 §4.1.2.1's codes for a server that failed or cannot serve now,
 * which an IdP sends where it sends no 5xx: an outage in any status, as a
 * 5xx is. Read as unknown codes they ended the session, and a 200 or a
 * page-labelled 4xx that carries one is read by its code too.
 */
const OUTAGE_CODES: ReadonlySet<string> = new Set(['server_error', 'temporarily_unavailable'])

/**
 * The codes a 401 challenge of a scheme other than DPoP names that say
 * more than "unauthorized": the client itself refused, or only its DPoP
 * proof. A DPoP challenge (RFC 9449 §7.1's shape, which some IdPs give the
 * token endpoint too) is the proof's whatever else it names: `challengeAnswer`.
 */
const ANSWERED_BY_CHALLENGE: ReadonlySet<string> = new Set([
  'invalid_client',
  'unauthorized_client',
  'use_dpop_nonce',
  'invalid_dpop_proof',
])

/** oauth4webapi's codes for an answer it could not read at all. */
const UNREADABLE: ReadonlySet<string> = new Set([
  oauth.RESPONSE_IS_NOT_CONFORM,
  oauth.RESPONSE_IS_NOT_JSON,
  oauth.PARSE_ERROR,
])

/** What one failed call to the IdP was, for logs and metrics: never a token in it. */
export interface IdpFailure {
  readonly operation: IdpOperation
  /** The provider asked (`identityProviders[].name`), when the caller said. */
  readonly idp?: string
  readonly answer: IdpAnswer
  readonly verdict: Verdict
  readonly status?: number
  /** The OAuth `error` code as the IdP sent it, bounded, with any secret of the call redacted. */
  readonly oauthError?: string
  /** The IdP's `error_description`, shortened, with any secret of the call redacted. */
  readonly description?: string
  /** One line: `HTTP 400 invalid_request: …`, `ECONNREFUSED 127.0.0.1:4000`, `timed out after …`. */
  readonly reason: string
  /** For `client_certificate_refused`: the TLS alert's name (RFC 8446 §6.2), `unknown_ca`, `certificate_expired`, …. */
  readonly tlsAlert?: string
  /** The seconds the answer's `Retry-After` asked for, as the IdP sent it: the gateway waits it out bounded. */
  readonly retryAfter?: number
  /** For an `invalid_answer` refused for a token over `tokens.maxSize`: which, and its size and the bound, bytes. */
  readonly tooLarge?: { readonly token: TokenKind; readonly bytes: number; readonly limit: number }
  /** For an `invalid_answer` refused for an ID token dated ahead: by how much, and the tolerance, seconds. */
  readonly issuedAhead?: { readonly seconds: number; readonly tolerance: number }
}

/** What the caller knows that makes a failure readable: its time budgets, and what must never be echoed. */
export interface FailureContext extends CallSecrets {
  /** The provider asked (`identityProviders[].name`): a log line must say which, with several. */
  readonly idp?: string
  readonly budgets?: Budgets
  /** The option of the client certificate the call offered (`oidc.tls`), which the IdP may refuse mid-handshake. */
  readonly clientCertificate?: string | undefined
}

const failures = new WeakMap<Error, IdpFailure>()

/**
 * What a log line says of an IdP's answer: its status, its OAuth error and
 * description (secrets of the call already cut out), or the network cause.
 * Never a token.
 */
export function failureFields(failure: IdpFailure | undefined): Record<string, unknown> {
  if (!failure) return {}
  return {
    ...(failure.idp === undefined ? {} : { idp: failure.idp }),
    ...(failure.status === undefined ? {} : { status: failure.status }),
    ...(failure.oauthError ? { oauthError: failure.oauthError } : {}),
    ...(failure.description ? { oauthErrorDescription: failure.description } : {}),
    ...(failure.oauthError ? {} : { reason: failure.reason }),
    ...(failure.retryAfter === undefined ? {} : { retryAfter: failure.retryAfter }),
    ...(failure.tooLarge === undefined
      ? {}
      : {
          token: failure.tooLarge.token,
          tokenBytes: failure.tooLarge.bytes,
          maxTokenSize: failure.tooLarge.limit,
        }),
    ...(failure.issuedAhead === undefined
      ? {}
      : {
          idTokenIssuedAhead: failure.issuedAhead.seconds,
          clockTolerance: failure.issuedAhead.tolerance,
        }),
  }
}

/** The IdP failure behind a gateway error made by `translateIdpError`, if it was one. */
export function idpFailureOf(err: unknown): IdpFailure | undefined {
  return err instanceof Error ? failures.get(err) : undefined
}

/**
 * OIDC Core §3.1.2.6: the errors with which an IdP answers `prompt=none`
 * when it would have had to show the user a page. Not failures: answers to
 * "is the user signed in?".
 */
const INTERACTION_ERRORS: ReadonlySet<string> = new Set([
  'login_required',
  'consent_required',
  'interaction_required',
  'account_selection_required',
])

/** The OIDC §3.1.2.6 error the IdP answered a login with, if it was one of them. */
export function interactionRequired(err: unknown): string | undefined {
  const cause = err instanceof oauth.AuthorizationResponseError ? err : (err as Error | undefined)?.cause
  return cause instanceof oauth.AuthorizationResponseError && INTERACTION_ERRORS.has(cause.error)
    ? cause.error
    : undefined
}

/**
 * The 503 for an operation the IdP cannot serve now, so that a refresh
 * reports as a refresh and a client-credentials fetch as a client token.
 */
export function idpUnavailable(operation: IdpOperation, detail?: string, cause?: unknown): GatehouseError {
  return gatehouseError(unavailable[operation], detail, cause)
}

/**
 * The single place where failures of IdP calls become gateway errors: the
 * answer is recognised, its verdict looked up in the classification
 * (`answers.ts`), and the gateway error made from the verdict. No caller
 * guesses from a stray try/catch.
 */
export function translateIdpError(
  operation: IdpOperation,
  err: unknown,
  context: FailureContext = {},
): GatehouseError {
  if (isGatehouseError(err)) return err
  // RFC 6749 §4.1.2.1: an error the IdP sent the browser back with, not a back-channel answer.
  if (err instanceof oauth.AuthorizationResponseError) {
    return gatehouseError(
      'GATEHOUSE_ERR_LOGIN_FAILED',
      `The identity provider answered with an error (${printable(err.error, 64)}).`,
      err,
    )
  }
  const retryAfter = retryAfterOfAnswer(headersOf(err))
  const recognized = {
    ...recognize(operation, err, context),
    ...(retryAfter === undefined ? {} : { retryAfter }),
  }
  const verdict = verdictOn(operation, recognized.answer)
  const error = Object.assign(gatewayError(operation, verdict, recognized, err), {
    reason: recognized.reason,
  })
  failures.set(error, {
    operation,
    ...(context.idp === undefined ? {} : { idp: context.idp }),
    verdict,
    ...recognized,
  })
  return error
}

function gatewayError(
  operation: IdpOperation,
  verdict: Verdict,
  { answer, oauthError, status, retryAfter, reason }: Recognized,
  err: unknown,
): GatehouseError {
  switch (verdict) {
    case 'session_over':
      return gatehouseError('GATEHOUSE_ERR_SESSION_EXPIRED', undefined, err)
    case 'route_refused':
      if (operation === 'token_exchange')
        return gatehouseError(
          'GATEHOUSE_ERR_TOKEN_EXCHANGE_REFUSED',
          `The identity provider refused to exchange the session's token for this route's (${oauthError ?? `HTTP ${status ?? '?'}`}). The session stays; other routes still work.`,
          err,
        )
      if (operation === 'unbound_route_refresh')
        return gatehouseError(
          'GATEHOUSE_ERR_RESOURCE_REFUSED',
          `The identity provider refused this route's token (${oauthError ?? `HTTP ${status ?? '?'}`}), asked for without a DPoP proof (routes[].dpop: false) for a session whose tokens are DPoP-bound. An IdP that requires DPoP-bound tokens for this client refuses every such request: give the route dpop: true, or no resource or scopes of its own. The session stays; other routes still work.`,
          err,
        )
      return operation === 'client_credentials'
        ? gatehouseError(
            'GATEHOUSE_ERR_CLIENT_TOKEN_REFUSED',
            `The identity provider refused the client-credentials token for this route's scopes (${oauthError}). Other routes still work.`,
            err,
          )
        : gatehouseError(
            'GATEHOUSE_ERR_RESOURCE_REFUSED',
            `The identity provider refused to issue a token for this route's resource or scopes (${oauthError}). The session stays; other routes still work.`,
            err,
          )
    case 'client_refused':
      return gatehouseError('GATEHOUSE_ERR_IDP_CLIENT_REFUSED', undefined, err)
    case 'login_failed':
      return gatehouseError(
        'GATEHOUSE_ERR_LOGIN_FAILED',
        answer === 'invalid_answer'
          ? `The login response failed validation: ${reason}`
          : `The identity provider refused the login (${oauthError ?? `HTTP ${status ?? '?'}`}).`,
        err,
      )
    case 'unavailable':
    case 'logout_proceeds':
      return honouring(
        retryAfter,
        refusesProof(answer)
          ? gatehouseError('GATEHOUSE_ERR_DPOP_PROOF_REFUSED', dpopRefusal(answer, err), err)
          : idpUnavailable(operation, unavailableDetail(err, answer, reason), err),
      )
  }
}

/**
 * What the client is told of an answer refused for a token over
 * `tokens.maxSize`: not that the IdP is down. The IdP may issue a smaller
 * one next time (fewer groups, a fixed mapper), so it is still a 503.
 */
const TOO_LARGE =
  'The identity provider issued a token larger than this gateway keeps (tokens.maxSize); none was stored or forwarded, and the log says which. Retry later.'

/**
 * What the client is told of an ID token dated ahead of the gateway's
 * clock: not that the IdP is down. A clock set right mends it, so it is
 * still a 503.
 */
const ISSUED_AHEAD =
  "The identity provider issued an ID token dated ahead of this gateway's clock by more than the two may differ; none was stored, and the log says by how much. Retry later."

/**
 * What the client is told of a refresh answered with another user's ID
 * token: not that the IdP is down. The next refresh may be answered right;
 * if not, the session ends at `tokens.unavailableLimit`, as it should.
 */
const ANOTHER_USER =
  "The identity provider answered the refresh with an ID token of another user than this session's (OIDC Core §12.2); nothing of it was stored or forwarded, and the log says so. Retry later."

/**
 * The client's message for a 503 the gateway made of an answer it refused
 * itself; the catalogue's otherwise. Any other answer that failed
 * validation (a negative `expires_in`, a `token_type` never asked for, an
 * ID token's `iss`) is the IdP's deviation, not an outage, and is said so
 * with oauth4webapi's words for it, as the sign-in page says a login's:
 * they name a member or claim, never its value.
 */
function unavailableDetail(err: unknown, answer: IdpAnswer, reason: string): string | undefined {
  if (err instanceof TokenTooLarge) return TOO_LARGE
  if (err instanceof IdTokenIssuedAhead) return ISSUED_AHEAD
  if (err instanceof RefreshedIdTokenOfAnotherUser) return ANOTHER_USER
  if (answer === 'invalid_answer')
    return `The identity provider's answer failed validation (${printable(reason, 200)}), so none of it was used. Retry later.`
  return undefined
}

/** Whether `answer` refuses the gateway's DPoP proof rather than the grant (RFC 9449). */
export function refusesProof(answer: IdpAnswer): boolean {
  return answer === 'use_dpop_nonce' || answer === 'invalid_dpop_proof'
}

function dpopRefusal(answer: IdpAnswer, err: unknown): string {
  // Not retried (dpop.ts): the nonce was one no proof may carry.
  if (answer === 'use_dpop_nonce' && !carriesUsableNonce(err))
    return 'The identity provider asked for a DPoP nonce (use_dpop_nonce, RFC 9449 §8) but sent no nonce a proof may carry (RFC 9449 §8.1: one DPoP-Nonce of printable ASCII without spaces or quotes; Gatehouse takes up to 1 KiB): check the identity provider and any proxy in front of it. The session stays; retry later.'
  return answer === 'use_dpop_nonce'
    ? "The identity provider asked for a DPoP nonce again after the gateway's proof carried the one it gave (use_dpop_nonce, RFC 9449 §8): its nodes may not share their nonce secret. The session stays; retry later."
    : "The identity provider refused the gateway's DPoP proof (invalid_dpop_proof, RFC 9449 §5): check this host's clock and that the identity provider accepts oidc.dpop's algorithm. The session stays; retry later."
}

type Recognized = Omit<IdpFailure, 'operation' | 'verdict'>

/** The headers of the IdP's answer behind the error oauth4webapi raised for it, if there was one. */
function headersOf(err: unknown): HeaderReader | undefined {
  const response =
    err instanceof oauth.ResponseBodyError || err instanceof oauth.WWWAuthenticateChallengeError
      ? err.response
      : err instanceof oauth.OperationProcessingError
        ? err.cause
        : undefined
  // Duck-typed, as in `recognize`: the Response comes from undici's fetch, not the global one.
  const headers = (response as { headers?: Partial<HeaderReader> } | undefined)?.headers
  return typeof headers?.get === 'function' ? (headers as HeaderReader) : undefined
}

/** What the IdP answered, from the error oauth4webapi or fetch raised for it. */
function recognize(operation: IdpOperation, err: unknown, context: FailureContext): Recognized {
  // A 200 the gateway refused itself: its words, never the token.
  if (err instanceof TokenTooLarge)
    return {
      answer: 'invalid_answer',
      reason: err.message,
      tooLarge: { token: err.kind, bytes: err.bytes, limit: err.limit },
    }
  if (err instanceof IdTokenIssuedAhead)
    return {
      answer: 'invalid_answer',
      reason: err.message,
      issuedAhead: { seconds: err.ahead, tolerance: err.tolerance },
    }
  if (err instanceof RefreshedIdTokenOfAnotherUser || err instanceof UnsendableAccessToken)
    return { answer: 'invalid_answer', reason: err.message }
  if (err instanceof oauth.ResponseBodyError) {
    // A 408, 429 or 5xx is decided by its status anyway; the code is kept for the log (Auth0's `too_many_requests`).
    if (byStatus(err.status) === undefined && isReasonPhrase(err.status, err.error)) {
      const said = printable(err.error, 64)
      return {
        answer: unexplained(err.status),
        status: err.status,
        reason: `HTTP ${err.status} without an OAuth error body (its error "${said}" is the status's reason phrase)`,
      }
    }
    return oauthErrorAnswer(err.status, err.error, err.error_description, context)
  }
  // A success status with an OAuth error instead of the answer: GitHub's
  // token endpoint answers its errors so. The IdP's word on the grant, as
  // in a 400; read as an answer that failed validation, it kept a revoked
  // session on 503 until tokens.unavailableLimit, logged without the error.
  const inSuccess =
    err instanceof oauth.OperationProcessingError && err.code === oauth.INVALID_RESPONSE
      ? // oauth4webapi gives the body it read as `cause.body`.
        oauthErrorOf((err.cause as { body?: unknown } | undefined)?.body)
      : undefined
  if (inSuccess) {
    // oauth4webapi validates the body only once the status is the success it expects.
    const status = operation === 'par' ? 201 : 200
    return oauthErrorAnswer(status, inSuccess.error, inSuccess.error_description, context)
  }
  if (err instanceof oauth.WWWAuthenticateChallengeError) {
    // Thrown before the body is read: release the connection it holds.
    void err.response.body?.cancel().catch(() => {})
    // An IdP may offer several schemes (RFC 9110 §11.6.1): the one naming
    // an error says what went wrong, whichever comes first.
    const challenge = err.cause.find((c) => c.parameters.error !== undefined) ?? err.cause[0]
    // The challenge's error is the IdP's text as much as a body's: any quoted string (RFC 9110 §11.2), so it can echo a secret.
    const named = challenge?.parameters.error
      ? printable(redactEchoes(challenge.parameters.error, context), 64)
      : undefined
    const description = describe(challenge?.parameters.error_description, context)
    // oauth4webapi gives the scheme in lower case, and schemes are case-insensitive (RFC 9110 §11.1).
    const dpop = challenge?.scheme.toLowerCase() === 'dpop'
    const scheme = dpop
      ? 'DPoP'
      : challenge
        ? challenge.scheme.charAt(0).toUpperCase() + challenge.scheme.slice(1)
        : '?'
    const reason = `HTTP ${err.status} with WWW-Authenticate: ${printable(scheme, 32)}${named ? ` error="${named}"` : ''}${description ? `: ${description}` : ''}`
    const answer = challengeAnswer(err.status, dpop, named)
    return { answer, status: err.status, ...(named ? { oauthError: named } : {}), reason }
  }
  if (err instanceof oauth.OperationProcessingError && UNREADABLE.has(err.code ?? '')) {
    // Duck-typed: the Response comes from undici's fetch, not the global one.
    const response = err.cause as
      | {
          status?: unknown
          url?: unknown
          body?: ReadableStream | null
          headers?: { get(name: string): string | null }
        }
      | undefined
    void response?.body?.cancel().catch(() => {})
    const status = typeof response?.status === 'number' ? response.status : undefined
    if (status === undefined) {
      // The body failed as it was read (cut off, too large, stalled): a network failure, not the IdP's words.
      const cause = networkCause(err, context.budgets)
      if (cause !== undefined) return { answer: isTimeout(err) ? 'timeout' : 'network', reason: cause }
      return { answer: 'unparseable', reason: err.message }
    }
    const json = err.code === oauth.RESPONSE_IS_NOT_CONFORM
    // A page (an HTML 400 from a proxy or WAF in front of the IdP, "header
    // too large") is not the IdP refusing the grant, which a bare 400 or
    // JSON without an error may be: it must not end the session.
    const page = !json && status === 400 && namesPage(response?.headers)
    const answer = byStatus(status) ?? (page ? 'refused' : unexplained(status))
    const what = json ? 'without an OAuth error body' : 'that is not JSON'
    if (status >= 300 && status < 400) {
      // oauth4webapi has fetch follow no redirect: credentials and tokens go only to the URLs configured and discovered.
      const target = redirectTarget(response?.headers?.get('location'), response?.url)
      const where = target === undefined ? undefined : printable(target, 200)
      return {
        answer,
        status,
        reason: `HTTP ${status} redirect${where ? ` to ${where}` : ''}, which the gateway does not follow`,
      }
    }
    // A success in another status than the endpoint's (oauth4webapi takes only that one): not a missing error body.
    if (json && status >= 200 && status < 300)
      return {
        answer,
        status,
        reason: `HTTP ${status} where this endpoint answers ${operation === 'par' ? 201 : 200}`,
      }
    return { answer, status, reason: status >= 500 ? `HTTP ${status}` : `HTTP ${status} ${what}` }
  }
  if (err instanceof oauth.OperationProcessingError || err instanceof oauth.UnsupportedOperationError) {
    return {
      answer: 'invalid_answer',
      reason: staleAuthTime(err) ?? unknownTokenType(err) ?? explainedMessage(err, operation === 'userinfo'),
    }
  }
  const cause = networkCause(err, context.budgets)
  const refusal = certificateRefusal(failureCode(err))
  if (cause !== undefined && refusal) {
    const what = context.clientCertificate
      ? `the identity provider refused the client certificate of ${context.clientCertificate}.cert`
      : 'the identity provider asks for a client certificate, and the gateway has none'
    return {
      answer: 'client_certificate_refused',
      tlsAlert: refusal.alert,
      reason: `${cause}: ${what} (alert ${refusal.alert}: ${refusal.meaning})`,
    }
  }
  if (cause !== undefined) {
    const hint =
      context.clientCertificate && closedUnanswered(err)
        ? `; an identity provider that requires a client certificate closes so when it did not trust the one offered (${context.clientCertificate}.cert, key; its CA and its registration at the provider)`
        : ''
    return { answer: isTimeout(err) ? 'timeout' : 'network', reason: `${cause}${hint}` }
  }
  const { name, message } = err instanceof Error ? err : { name: 'Error', message: String(err) }
  return { answer: 'unparseable', reason: `${name}: ${message}` }
}

/** An answer whose body carries an OAuth `error` (RFC 6749 §5.2), by its status and code. */
function oauthErrorAnswer(
  status: number,
  error: unknown,
  description: unknown,
  context: FailureContext,
): Recognized {
  const oauthError = printable(redactEchoes(error, context), 64)
  const described = describe(description, context)
  return {
    answer: byStatus(status) ?? oauthAnswer(oauthError),
    status,
    oauthError,
    ...(described ? { description: described } : {}),
    reason: `HTTP ${status} ${oauthError}${described ? `: ${described}` : ''}`,
  }
}

/**
 * The row of a challenge the IdP answered with. A 401 is the client
 * refused unless it says more; a DPoP challenge says the proof was, whatever
 * else it names (`invalid_token`, `invalid_request`, nothing): RFC 9449
 * §7.1's scheme is about the proof and the token bound to it, never the
 * client's credentials, and a client refusal would send an operator after
 * a secret that is fine. Only `use_dpop_nonce` keeps its own row (§8).
 */
function challengeAnswer(status: number, dpop: boolean, named: string | undefined): IdpAnswer {
  // A challenge on a 429 or a 5xx names no refusal of the grant, whatever its error says.
  const decided = byStatus(status)
  if (decided !== undefined) return decided
  if (status === 401) {
    // Under DPoP too, a challenge that names the client refuses the client.
    if (named === 'invalid_client' || named === 'unauthorized_client') return named
    if (dpop) return named === 'use_dpop_nonce' ? 'use_dpop_nonce' : 'invalid_dpop_proof'
    // RFC 6750 §3.1's `invalid_token` speaks of a token the request carried:
    // at the IdP the grant's (a refresh token, a code, a subject token),
    // never the client's credentials (`invalid_client`). Read as the body's
    // error would be; as the client refused it kept that session on 500 and
    // held back every session's refresh at the provider for 5 minutes.
    if (named === 'invalid_token') return 'other_oauth_error'
    return named !== undefined && ANSWERED_BY_CHALLENGE.has(named) ? (named as IdpAnswer) : 'unauthorized'
  }
  return named ? oauthAnswer(named) : unexplained(status)
}

/** Whether an answer says its body is a document other than JSON (`text/html`, `text/plain`). */
function namesPage(headers: { get(name: string): string | null } | undefined): boolean {
  const type = headers?.get('content-type')?.split(';')[0]?.trim().toLowerCase()
  return type !== undefined && type !== '' && type !== 'application/json' && !type.endsWith('+json')
}

/**
 * The statuses that decide whatever the body says: a 5xx, the IdP failed;
 * 408 and 429, come back later (RFC 9110 §15.5.9, RFC 6585 §4). An OAuth
 * `error` beside them (Auth0's 429 `too_many_requests`) is no word on the
 * grant: read as an unknown code, it ended the session.
 */
function byStatus(status: number): IdpAnswer | undefined {
  if (status >= 500) return 'server_error'
  if (status === 408 || status === 429) return 'retry_later'
  return undefined
}

/**
 * The row of any other answer that carries no OAuth `error` to read, by its
 * status alone: 401, the client refused (RFC 6749 §5.2); 400, the request
 * refused, the status §5.2 gives a refusal; any other 4xx, refused, for no
 * reason given; a 2xx or 3xx that is not a token answer, unreadable.
 */
function unexplained(status: number): IdpAnswer {
  if (status === 401) return 'unauthorized'
  if (status === 400) return 'bad_request'
  if (status >= 400) return 'refused'
  return 'unparseable'
}

/**
 * The row of an OAuth `error` in a 4xx body. The code decides, whatever the
 * status: an IdP that answers 401 `invalid_grant` said what it meant.
 */
function oauthAnswer(code: string): IdpAnswer {
  if (OUTAGE_CODES.has(code)) return 'server_error'
  return OAUTH_ANSWERS.has(code) ? (code as IdpAnswer) : 'other_oauth_error'
}

/**
 * An IdP-controlled string, bounded and on one line, for a log: not only
 * controls (\p{Cc}) but the line and paragraph separators U+2028/U+2029,
 * which a log viewer breaks lines at, and format characters (\p{Cf}: the
 * bidi overrides and isolates U+202A–U+202E, U+2066–U+2069, zero-width
 * ones), which make a line read otherwise than it is (Trojan Source, CVE-2021-42574).
 */
export function printable(value: unknown, max: number): string {
  const text = String(value ?? '').replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]+/gu, ' ')
  return text.length > max ? `${text.slice(0, max)}…` : text
}

/** `error_description` with the call's own secrets cut out: some IdPs echo the token they refused. */
function describe(value: unknown, context: FailureContext): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined
  return printable(redactEchoes(value, context), 300)
}

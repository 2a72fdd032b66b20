import {
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  type JWTVerifyOptions,
  jwtVerify,
  type ProtectedHeaderParameters,
} from 'jose'
import { type GatehouseError, gatehouseError, withRetryAfter } from '../errors.js'
import { networkCause } from '../network-cause.js'
import { redirectTarget } from './http-answers.js'
import { firstKeysOf, type KeysFetch, keyNotImported, MAX_JWKS_KEYS } from './logout-token-keys.js'

const EVENT = 'http://schemas.openid.net/event/backchannel-logout'

/** The oldest `iat` a logout token may have, seconds before now (less the skew allowed). */
export const LOGOUT_TOKEN_MAX_AGE = 120
/** The skew allowed between the IdP's clock and the gateway's, seconds. */
export const LOGOUT_TOKEN_CLOCK_TOLERANCE = 30

/**
 * The algorithms whose key is the client secret (OIDC Core §10.1), not a
 * key of the issuer's JWKS.
 */
const HMAC_ALGORITHMS: readonly string[] = ['HS256', 'HS384', 'HS512']

/**
 * The most keys of the issuer's JWKS one logout token is tried against
 * when several match its `kid` and `alg`. An IdP publishes a few under one
 * `kid` across a rotation, but its JWKS is its to fill (up to
 * IDP_MAX_RESPONSE, some thousands of keys), and anyone may post a token:
 * a forged one without `kid` against a JWKS of 5,000 EC keys cost some 2 s
 * of CPU, 10 of them at once 11 s, with no key to find.
 */
export const MAX_MATCHING_KEYS = 16

/** How soon after a JWKS fetch an unknown `kid` fetches it again: jose's default, said here to be answered in `Retry-After`. */
const JWKS_COOLDOWN_SECONDS = 30

export interface LogoutClaims {
  readonly jti: string
  /**
   * When the IdP issued it, seconds by the IdP's clock: a sign-in of the
   * user it logs out (`sub` only) whose ID token's `auth_time` is later was
   * authenticated after the logout (Sessions.create).
   */
  readonly iat: number
  readonly sub: string | undefined
  readonly sid: string | undefined
}

export interface LogoutTokenOptions {
  readonly jwksUri: string
  readonly issuer: string
  readonly clientId: string
  /**
   * The client's secret (`client_secret_basic` or `_post`), the key of
   * tokens signed HS256, HS384 or HS512; without one such tokens are refused.
   */
  readonly clientSecret?: string | undefined
  /**
   * The issuer's `id_token_signing_alg_values_supported`; absent, RS256
   * alone (OIDC Core §3.1.3.7). A token signed with the client secret is
   * taken only with one of these.
   */
  readonly idTokenAlgorithms?: readonly string[] | undefined
  /** Oldest acceptable `iat`, seconds. */
  readonly maxAge?: number
  readonly timeoutMs?: number
  readonly now?: () => number
  /** The IdP's own connection (its CA, client certificate); else the global fetch. */
  readonly fetch?: (url: string, init: RequestInit) => Promise<Response>
}

/**
 * OpenID Connect Back-Channel Logout 1.0 §2.6: verifies a logout token's
 * signature against the issuer's JWKS (jose refetches on an unknown `kid`,
 * so key rotation needs nothing from us), or an HMAC one against the client
 * secret, then its claims.
 */
export class LogoutTokenVerifier {
  readonly #jwks: ReturnType<typeof createRemoteJWKSet>
  readonly #issuer: string
  readonly #clientId: string
  readonly #secret: Uint8Array | undefined
  readonly #idTokenAlgorithms: readonly string[]
  readonly #maxAge: LogoutTokenOptions['maxAge']
  readonly #now: LogoutTokenOptions['now']
  /** How many keys the last JWKS fetched held, when over MAX_JWKS_KEYS. */
  #unread: number | undefined
  /**
   * The calls under way, each with its `stop` (none for a delivery's): jose
   * makes one JWKS fetch for every call waiting on the keys, so it is aborted
   * only once all of them are stopped.
   */
  readonly #calls = new Set<{ readonly stop: AbortSignal | undefined }>()
  /** Aborts the JWKS fetch under way, if any. */
  #fetching: AbortController | undefined
  /**
   * Why the last JWKS fetch brought no keys, as the log says it (`HTTP 503`,
   * a redirect, a network failure); undefined after a 200. jose's errors
   * say only that the answer was not a 200, or not JSON.
   */
  #unfetched: string | undefined
  readonly #timeoutMs: number

  constructor(options: LogoutTokenOptions) {
    this.#issuer = options.issuer
    this.#clientId = options.clientId
    // OIDC Core §10.1: the key is the octets of the secret's UTF-8 representation.
    this.#secret =
      options.clientSecret === undefined ? undefined : new TextEncoder().encode(options.clientSecret)
    this.#idTokenAlgorithms = options.idTokenAlgorithms ?? ['RS256']
    this.#maxAge = options.maxAge
    this.#now = options.now
    this.#timeoutMs = options.timeoutMs ?? 5_000
    this.#jwks = createRemoteJWKSet(new URL(options.jwksUri), {
      timeoutDuration: this.#timeoutMs,
      cooldownDuration: JWKS_COOLDOWN_SECONDS * 1000,
      [customFetch]: firstKeysOf(this.#stoppable(options.fetch ?? fetch), (held) => {
        this.#unread = held
      }),
    })
  }

  /**
   * Verifies `token`. `stop` (a held token's try, from the shutdown's last
   * pass) ends the call when it aborts, and the JWKS fetch under way with it
   * once no other call waits on that fetch: a fetch the IdP holds open ran
   * on until its `timeout`, past the drain, and the IdP's connection pool,
   * closed after it, waited for it.
   */
  async verify(token: string, stop?: AbortSignal): Promise<LogoutClaims> {
    if (stop?.aborted) throw keysUnfetched()
    const call = { stop }
    this.#calls.add(call)
    let aborted = () => {}
    const stopped = new Promise<never>((_, reject) => {
      aborted = () => {
        if (this.#everyCallStopped()) this.#fetching?.abort(stop?.reason)
        reject(keysUnfetched())
      }
      stop?.addEventListener('abort', aborted, { once: true })
    })
    try {
      return await (stop === undefined ? this.#verify(token) : Promise.race([this.#verify(token), stopped]))
    } finally {
      this.#calls.delete(call)
      stop?.removeEventListener('abort', aborted)
    }
  }

  #everyCallStopped(): boolean {
    for (const { stop } of this.#calls) if (stop?.aborted !== true) return false
    return true
  }

  /** `fetch`, with the signal jose gives it (its timeout) and `#fetching`'s. */
  #stoppable(fetch: KeysFetch): KeysFetch {
    return async (url, init) => {
      const own = new AbortController()
      this.#fetching = own
      // Every call waiting on it stopped before jose started it.
      if (this.#calls.size > 0 && this.#everyCallStopped()) own.abort()
      const signal = init.signal ? AbortSignal.any([init.signal, own.signal]) : own.signal
      try {
        const response = await fetch(url, { ...init, signal })
        this.#unfetched = response.status === 200 ? undefined : unfetchedAnswer(response, url)
        return response
      } catch (err) {
        this.#unfetched =
          networkCause(err, { total: { ms: this.#timeoutMs, name: 'oidc.timeout' } }) ??
          (err instanceof Error ? err.message : String(err))
        throw err
      } finally {
        if (this.#fetching === own) this.#fetching = undefined
      }
    }
  }

  async #verify(token: string): Promise<LogoutClaims> {
    let header: ProtectedHeaderParameters
    try {
      header = decodeProtectedHeader(token)
    } catch {
      throw invalid('it is not a JWT')
    }
    // An ID token must never pass for a logout token: refuse any other
    // explicit type. The generic JWT type is no type: Back-Channel Logout
    // 1.0 §2.4 only recommends logout+jwt, and OPs that predate it write
    // JWT (Keycloak before 25, Authentik before 2025.12, Glewlwyd). What
    // tells such a token from an ID token is §2.6's, below: the logout
    // event, and no nonce (§4.1).
    const { typ } = header
    if (typ !== undefined && !/^(application\/)?(logout\+)?jwt$/i.test(typ))
      throw invalid(`unexpected typ${typeName(typ)}`, 'unexpected typ')
    // Before jose looks: a JWKS fetched for this very token and still
    // lacking its kid is the IdP's answer; one fetched before it, too
    // recently for jose to fetch again, may predate the IdP's new key, and
    // so may one whose fetch began before it, which jose has it wait for
    // and then not fetch again.
    const coolingDown = this.#jwks.coolingDown || this.#jwks.reloading
    // Back-Channel Logout 1.0 §2.4: logout tokens are signed with the keys
    // ID tokens are. A client registered for HS256 ID tokens (OIDC Core
    // §10.1) gets its logout tokens signed with its secret, which no JWKS
    // publishes: looked for there, every one was refused and the sessions
    // the user ended at the IdP ran on.
    const hmac = typeof header.alg === 'string' && HMAC_ALGORITHMS.includes(header.alg)
    if (hmac && this.#secret === undefined)
      throw invalid(
        `it is signed with ${header.alg}, whose key is a client secret (OIDC Core §10.1), and this client authenticates without one`,
        'signed with a client secret this client has not',
      )
    // Only an issuer that signs ID tokens with the secret signs logout
    // tokens with it (§2.4). A secret is often weaker than a signing key and
    // held by more than the IdP (every replica, a secret store): taken from
    // any issuer, whoever held it could end any user's sessions.
    if (hmac && !this.#idTokenAlgorithms.includes(header.alg as string))
      throw invalid(
        `it is signed with ${header.alg}, which the identity provider does not sign ID tokens with (it advertises ${this.#idTokenAlgorithms.join(', ')})`,
        'signed with an algorithm its ID tokens are not',
      )
    const options: JWTVerifyOptions = {
      issuer: this.#issuer,
      audience: this.#clientId,
      requiredClaims: ['iat', 'jti'],
      maxTokenAge: this.#maxAge ?? LOGOUT_TOKEN_MAX_AGE,
      clockTolerance: LOGOUT_TOKEN_CLOCK_TOLERANCE,
      ...(this.#now ? { currentDate: new Date(this.#now()) } : {}),
    }
    let payload: JWTPayload
    try {
      ;({ payload } =
        hmac && this.#secret !== undefined
          ? await jwtVerify(token, this.#secret, { ...options, algorithms: [...HMAC_ALGORITHMS] })
          : // Never an HMAC algorithm here: jose would key it with no secret of ours.
            await verifiedByAnyMatch(token, this.#jwks, options))
    } catch (err) {
      const unchecked = uncheckable(err, coolingDown, this.#unfetched)
      if (unchecked) throw unchecked
      // Not jose's error as the cause: a log of the error's causes would print its message.
      throw invalid(refusal(err, header, hmac, this.#unread))
    }
    // §2.4: events is a JSON object whose member for the event is a JSON object.
    const events = payload.events
    if (!isObject(events) || !isObject(events[EVENT])) {
      throw invalid('the events claim lacks the back-channel logout event')
    }
    if ('nonce' in payload) throw invalid('a logout token must not carry a nonce')
    // jose checks only that jti is there. An empty one is no identifier:
    // every such token of the issuer would be one token to the replay
    // check, and the second logout within minutes refused as a replay.
    if (!isText(payload.jti)) throw invalid('jti is not a non-empty string')
    // A sub or sid of another type than text is a malformed token, not one
    // that names nobody: refused, never read past to the other claim.
    const { sub, sid } = payload
    if ((sub !== undefined && typeof sub !== 'string') || (sid !== undefined && typeof sid !== 'string'))
      throw invalid('sub and sid must be strings')
    if (!sub && !sid) throw invalid('neither sub nor sid is present')
    // jose checked that iat is a number (requiredClaims, maxTokenAge).
    return { jti: payload.jti, iat: payload.iat!, sub: sub || undefined, sid: sid || undefined }
  }
}

/**
 * `jwtVerify` against the issuer's JWKS, and when several of its keys match
 * the token's `kid` and `alg`, against each in turn, as jose's error offers
 * them: RFC 7517 §4.5 only says keys SHOULD have distinct `kid`s, so an IdP
 * that reuses one across a rotation publishes the old and new key under
 * it, and a token without `kid` matches every key of its type. Refused as
 * ambiguous, every logout of such an IdP was answered 400 and the sessions
 * it ended ran on. A key that verifies the signature decides, claims and
 * all; a signature none verifies is refused as with one key. Past
 * MAX_MATCHING_KEYS the token is refused as ambiguous after all (jose's
 * error), having cost no more than that many keys.
 */
async function verifiedByAnyMatch(
  token: string,
  jwks: ReturnType<typeof createRemoteJWKSet>,
  options: JWTVerifyOptions,
): Promise<{ payload: JWTPayload }> {
  try {
    return await jwtVerify(token, jwks, options)
  } catch (err) {
    if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err
    let refused: unknown = err
    let unusable: unknown
    let tried = 0
    for await (const key of err) {
      if (tried++ === MAX_MATCHING_KEYS) throw err
      try {
        return await jwtVerify(token, key, options)
      } catch (next) {
        // A key jose imported but will not verify with (an RSA key under
        // 2048 bits, its TypeError) is passed over as jose passes over one
        // it cannot import: an IdP rotating off a short key under the same
        // kid publishes both, and the token was refused for the old one.
        if (!(next instanceof errors.JOSEError)) {
          unusable ??= next
          continue
        }
        if (!(next instanceof errors.JWSSignatureVerificationFailed)) throw next
        refused = next
      }
    }
    // None of the keys was tried for its signature: jose's iteration
    // skipped those it could not import, and this loop those it could not
    // use. Refused for the keys, as one such key is (`refusal`), not as
    // more keys matching than are tried, which jose's error would say.
    if (refused === err) throw unusable ?? new TypeError('no key that matches can be imported')
    throw refused
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isText(value: unknown): value is string {
  return typeof value === 'string' && value !== ''
}

/**
 * A typ worth naming (` JWT`, an ID token's), else nothing: the header is
 * anyone's to write, and the refusal goes into the answer and a warning
 * that an unauthenticated POST can make, so it never repeats more than a
 * short, plain media type of it.
 */
function typeName(typ: unknown): string {
  return typeof typ === 'string' && /^[\w.+/-]{1,32}$/.test(typ) ? ` ${typ}` : ''
}

/**
 * Why jose refused the token, in our words, from its error's `code` (and,
 * for a claim, jose's own name of the claim it checked). Never its
 * message: jose quotes the token's header in it (`Extension Header
 * Parameter "<anything the sender wrote>" is not recognized`), and this
 * reason goes into the answer to an unauthenticated POST and a warning.
 */
function refusal(
  err: unknown,
  header: ProtectedHeaderParameters,
  hmac: boolean,
  held: number | undefined,
): string {
  // Past uncheckable, the one error jose lets through as it came: WebCrypto's
  // DataError for a key that is none (an EC point off its curve), its own
  // TypeError for an RSA key under 2048 bits; or verifiedByAnyMatch's, when
  // no key of several that match could be imported or used.
  if (!(err instanceof errors.JOSEError))
    return "the key in the issuer's JWKS that matches its kid and alg cannot be used: it is no valid key of its type, or an RSA key under 2048 bits"
  if (err instanceof errors.JWTExpired || err instanceof errors.JWTClaimValidationFailed) {
    return claimRefusal(err.claim, err.reason, err instanceof errors.JWTExpired)
  }
  switch (err.code) {
    case errors.JWSSignatureVerificationFailed.code:
      return hmac
        ? 'the signature does not verify against the client secret'
        : "the signature does not verify against the issuer's key"
    case errors.JWKSNoMatchingKey.code:
      return held === undefined
        ? "no key in the issuer's JWKS matches its kid and alg"
        : `no key of the first ${MAX_JWKS_KEYS} in the issuer's JWKS, which holds ${held}, matches its kid and alg; the rest are not read`
    case errors.JWKSMultipleMatchingKeys.code:
      return `more than ${MAX_MATCHING_KEYS} keys in the issuer's JWKS match its kid and alg, and it was tried against ${MAX_MATCHING_KEYS} at most, none of which verifies it`
    case errors.JWKSInvalid.code:
    case errors.JWKInvalid.code:
      return "the issuer's JWKS is malformed"
    case errors.JOSEAlgNotAllowed.code:
      return 'its alg is not allowed'
    // jose raises the same code for an unknown `crit` entry (RFC 7515
    // §4.1.11: the token must be refused) and an algorithm it lacks; the
    // header, already decoded, tells them apart without quoting either.
    case errors.JOSENotSupported.code:
      return header.crit === undefined
        ? 'its alg or key type is not supported'
        : 'unknown critical header (crit)'
    case errors.JWSInvalid.code:
      return 'it is not a well-formed JWS'
    case errors.JWTInvalid.code:
      return 'its payload is not a JWT claims set'
    default:
      return 'it could not be verified'
  }
}

/**
 * A token that could not be checked, rather than one that failed a check:
 * the issuer's JWKS unreachable, too slow or not a 200, or its `kid`
 * missing from a JWKS jose fetched too recently to fetch again, or began
 * fetching before the token came (a key the IdP has just rotated in:
 * jose's cooldown, 30 s); not a key of a JWKS read that cannot be imported. Refused as invalid, the
 * IdP would take the logout as done, or failed for good (Back-Channel
 * Logout §2.8's 400), and the user's sessions would run on; a 503 with
 * `Retry-After` asks for the token again once the keys can be read.
 */
/** The issuer's keys were not read: its JWKS could not be fetched, or the call was stopped first. */
/** `reason`, why the keys could not be read, is the error's cause, for the log (`unfetchedReason`). */
function keysUnfetched(reason?: string): GatehouseError {
  return gatehouseError(
    'GATEHOUSE_ERR_IDP_UNAVAILABLE',
    "The logout token could not be checked: the issuer's JWKS could not be fetched. Send it again later.",
    reason === undefined ? undefined : new KeysUnfetched(reason),
  )
}

/** Why the issuer's keys could not be read, as the cause of `keysUnfetched`'s error. */
class KeysUnfetched extends Error {
  constructor(reason: string) {
    super(reason)
    this.name = 'KeysUnfetched'
  }
}

/**
 * Why the issuer's JWKS could not be read, for an error `verify` threw
 * (a 503 `GATEHOUSE_ERR_IDP_UNAVAILABLE`), when it says: `HTTP 503`, a
 * redirect and where to, a network failure. The caller's log line carries it.
 */
export function unfetchedReason(err: unknown): string | undefined {
  const cause = err instanceof Error ? err.cause : undefined
  return cause instanceof KeysUnfetched ? cause.message : undefined
}

/** An answer to the JWKS fetch that is not a 200, in words: a redirect says where (origin and path). */
function unfetchedAnswer(response: Response, url: string): string {
  const { status } = response
  if (status < 300 || status > 399) return `HTTP ${status}`
  // As oauth4webapi's calls, jose's follows no redirect: the keys come only from the jwks_uri discovered.
  const target = redirectTarget(response.headers.get('location'), url)
  return `HTTP ${status} redirect${target ? ` to ${printableUrl(target)}` : ''}, which the gateway does not follow`
}

/** A URL of the IdP's, bounded and on one line. */
function printableUrl(url: string): string {
  const text = url.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]+/gu, ' ')
  return text.length > 200 ? `${text.slice(0, 200)}…` : text
}

function uncheckable(
  err: unknown,
  coolingDown: boolean,
  unfetched: string | undefined,
): GatehouseError | undefined {
  const unreachable =
    err instanceof errors.JOSEError
      ? err.code === errors.JWKSTimeout.code ||
        // jose's generic error: the JWKS answer was not a 200, or not JSON.
        err.code === errors.JOSEError.code
      : // Not a key jose could not import: the JWKS read, and that key
        // with it, is the IdP's to fix, not to wait for (refusal).
        !keyNotImported(err)
  if (unreachable)
    return keysUnfetched(
      unfetched ??
        (err instanceof errors.JOSEError && err.code === errors.JOSEError.code
          ? 'HTTP 200 that is not a JSON Web Key Set (RFC 7517 §5)'
          : undefined),
    )
  if (err instanceof errors.JWKSNoMatchingKey && coolingDown) {
    return withRetryAfter(
      gatehouseError(
        'GATEHOUSE_ERR_IDP_UNAVAILABLE',
        "The logout token could not be checked: no key in the issuer's JWKS matches its kid and alg, and the JWKS was fetched too recently to fetch again. Send it again later.",
      ),
      JWKS_COOLDOWN_SECONDS,
    )
  }
  return undefined
}

/**
 * RFC 7519 §4.1 and Back-Channel Logout §2.4's checks, by the claim jose
 * names: always one it was asked to check, but bounded all the same.
 */
function claimRefusal(claim: string, reason: string, expired: boolean): string {
  if (!/^[a-z]{1,8}$/.test(claim)) return 'a claim check failed'
  if (reason === 'missing') return `${claim} claim missing`
  if (reason === 'invalid') return `${claim} claim is not a NumericDate`
  if (claim === 'exp') return 'exp: the token has expired'
  if (claim === 'iat') return expired ? 'iat: the token is too old' : 'iat: the token is issued in the future'
  if (claim === 'nbf') return 'nbf: the token is not valid yet'
  return `${claim} claim check failed`
}

/** The refusals whose message quotes the sender: each, its reason in our words alone. */
const ownWords = new WeakMap<Error, string>()

/**
 * What a refusal of a logout token is, in our words alone: its message,
 * unless that quotes the sender (`unexpected typ <typ>`). The once-a-minute
 * line of the refusals is kept per this; per the message, a flood with a
 * new `typ` in each token wrote a warning each.
 */
export function refusalKind(err: Error): string {
  return ownWords.get(err) ?? err.message
}

function invalid(reason: string, kind?: string) {
  const err = gatehouseError(
    'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN',
    `The logout token is not valid: ${reason}.`,
  )
  if (kind !== undefined) ownWords.set(err, kind)
  return err
}

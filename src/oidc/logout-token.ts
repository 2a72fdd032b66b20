import { createRemoteJWKSet, customFetch, decodeProtectedHeader, type JWTPayload, jwtVerify } from 'jose'
import { gatehouseError } from '../errors.js'

const EVENT = 'http://schemas.openid.net/event/backchannel-logout'

export interface LogoutClaims {
  readonly jti: string
  readonly sub: string | undefined
  readonly sid: string | undefined
}

export interface LogoutTokenOptions {
  readonly jwksUri: string
  readonly issuer: string
  readonly clientId: string
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
 * so key rotation needs nothing from us), then its claims.
 */
export class LogoutTokenVerifier {
  readonly #jwks: ReturnType<typeof createRemoteJWKSet>
  readonly #issuer: string
  readonly #clientId: string
  readonly #maxAge: LogoutTokenOptions['maxAge']
  readonly #now: LogoutTokenOptions['now']

  constructor(options: LogoutTokenOptions) {
    this.#issuer = options.issuer
    this.#clientId = options.clientId
    this.#maxAge = options.maxAge
    this.#now = options.now
    this.#jwks = createRemoteJWKSet(new URL(options.jwksUri), {
      timeoutDuration: options.timeoutMs ?? 5_000,
      ...(options.fetch ? { [customFetch]: options.fetch } : {}),
    })
  }

  async verify(token: string): Promise<LogoutClaims> {
    let payload: JWTPayload
    try {
      // An ID token must never pass for a logout token: refuse any other explicit type.
      const { typ } = decodeProtectedHeader(token)
      if (typ !== undefined && !/^(application\/)?logout\+jwt$/i.test(typ))
        throw new Error(`unexpected typ${typeName(typ)}`)
      ;({ payload } = await jwtVerify(token, this.#jwks, {
        issuer: this.#issuer,
        audience: this.#clientId,
        requiredClaims: ['iat', 'jti'],
        maxTokenAge: this.#maxAge ?? 120,
        clockTolerance: 30,
        ...(this.#now ? { currentDate: new Date(this.#now()) } : {}),
      }))
    } catch (err) {
      throw invalid(`signature or standard claims: ${(err as Error).message}`)
    }
    const events = payload.events as Record<string, unknown> | undefined
    if (typeof events !== 'object' || events === null || typeof events[EVENT] !== 'object') {
      throw invalid('the events claim lacks the back-channel logout event')
    }
    if ('nonce' in payload) throw invalid('a logout token must not carry a nonce')
    const sub = typeof payload.sub === 'string' ? payload.sub : undefined
    const sid = typeof payload.sid === 'string' ? payload.sid : undefined
    if (!sub && !sid) throw invalid('neither sub nor sid is present')
    if (typeof payload.jti !== 'string') throw invalid('jti is missing')
    return { jti: payload.jti, sub, sid }
  }
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

function invalid(reason: string) {
  return gatehouseError('GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN', `The logout token is not valid: ${reason}.`)
}

import { decodeJwt } from 'jose'
import type { GatehouseError } from '../errors.js'
import { refreshLifetime } from './token-lifetime.js'

/**
 * A rotated refresh token too large to keep (over `tokens.maxSize`): the
 * session keeps none in place of its spent one, and lives on its access
 * token while that lasts, rather than grow its record or replay.
 */
export const UNKEPT: unique symbol = Symbol('rotated refresh token not kept')

/**
 * The refresh token a refused 200 rotated in, with the expiry the same
 * answer gave it (`refreshLifetime`), epoch ms on the gateway's clock;
 * without one when it gave none a refresh token may have.
 */
export interface RotatedToken {
  readonly refreshToken: string
  readonly expiresAt?: number
}

/** What a refused 200 leaves the session: the refresh token it rotated in, or `UNKEPT`. */
export type Rotated = RotatedToken | typeof UNKEPT

/**
 * The refresh token an IdP issued in an answer Gatehouse then refused
 * (a 200 whose access token, ID token or lifetime failed validation), by the
 * error that refused it. Kept beside the error, never on it, so no log of
 * the error or its causes can print it.
 */
const rotated = new WeakMap<GatehouseError, Rotated>()

/**
 * RFC 9700 §4.14.2: an IdP that answered 200 has rotated the refresh
 * token, whatever Gatehouse makes of the rest of the answer; the old one is
 * spent, and redeeming it again is a replay that revokes the grant. So the
 * new one is read from the answer as it came, for the session to keep,
 * unless it is over `maxBytes`: then `UNKEPT`, and the spent one goes too.
 * Its expiry is read from the same answer, as an accepted answer's is,
 * counted from `now()` when it came: the answer that issued the token is
 * the only word on its lifetime, whatever else in it was refused (an
 * `expires_in`, an ID token), and a lifetime counted from after the IdP
 * issued it can only err late, which ends the session at a refused
 * redemption rather than revoke a grant in use.
 */
export async function rotatedIn(
  answer: Response | undefined,
  maxBytes: number,
  now: () => number,
): Promise<Rotated | undefined> {
  const stranded = await strandedIn(answer)
  if (stranded === undefined) return undefined
  const { refreshToken, lifetime } = stranded
  if (Buffer.byteLength(refreshToken) > maxBytes) return UNKEPT
  return lifetime === undefined ? { refreshToken } : { refreshToken, expiresAt: now() + lifetime * 1000 }
}

/**
 * The IdP session and user a grant is for, as far as its answer says: what
 * another session sharing that grant at the IdP is found by.
 */
export interface GrantHolder {
  readonly sub?: string | undefined
  readonly sid?: string | undefined
}

/**
 * The refresh token of an answer Gatehouse refused, the lifetime the answer
 * gave it (`refreshLifetime`, seconds), and the holder its ID token names,
 * read without checking it: it was refused, so the holder is only ever a
 * reason to keep the grant (a session of the same IdP session may hold
 * it), never to trust anyone.
 */
export async function strandedIn(
  answer: Response | undefined,
): Promise<{ refreshToken: string; lifetime: number | undefined; holder: GrantHolder } | undefined> {
  if (answer === undefined) return undefined
  let body: { readonly [field: string]: unknown } | null
  try {
    body = (await answer.json()) as typeof body
  } catch {
    return undefined
  }
  if (typeof body !== 'object' || body === null) return undefined
  const refreshToken = body.refresh_token
  if (typeof refreshToken !== 'string' || refreshToken === '') return undefined
  return { refreshToken, lifetime: refreshLifetime(body), holder: holderIn(body.id_token) }
}

function holderIn(idToken: unknown): GrantHolder {
  if (typeof idToken !== 'string') return {}
  try {
    const { sub, sid } = decodeJwt(idToken)
    return {
      sub: typeof sub === 'string' && sub !== '' ? sub : undefined,
      sid: typeof sid === 'string' && sid !== '' ? sid : undefined,
    }
  } catch {
    return {}
  }
}

/** `error`, remembered with the refresh token its refused answer carried. */
export function withRotated(error: GatehouseError, refreshToken: Rotated | undefined): GatehouseError {
  if (refreshToken !== undefined) rotated.set(error, refreshToken)
  return error
}

/** The refresh token the answer behind `error` carried, if it was a 200 that rotated one. */
export function rotatedRefreshToken(error: unknown): Rotated | undefined {
  return typeof error === 'object' && error !== null ? rotated.get(error as GatehouseError) : undefined
}

/**
 * A session's record in Redis, `{prefix}s:{<id>}` (the layout is in
 * redis-store.ts and `REDIS_KEY_LAYOUT`): the fields CREATE writes, and a
 * row read back opened with the request's key. The sealed fields open only
 * with that key; the clear ones are checked or parsed without trusting
 * them, as anyone with access to Redis may have changed them.
 */
import { SHORTHAND_PROVIDER } from '../config/schema.js'
import type { IndexedClaim } from '../crypto/derived-keys.js'
import { gatehouseError } from '../errors.js'
import type { RedisKeys } from '../redis/keys.js'
import type { ClientRegistration, TokenSet } from '../types.js'
import { loginFields, openField, sealField } from './sealed-fields.js'
import type { EndedSession, SessionData, SessionRef } from './types.js'

/**
 * The `ix` field: the hashes a session is indexed under, whose indexes
 * (`idp`; absent: `default`'s), and the registration of its tokens (absent
 * in a session made before it was recorded), which a lookup by `sub` or
 * `sid` reads without the session's key.
 */
export type IndexNames = Partial<Record<IndexedClaim | 'idp', string>> & {
  readonly registration?: ClientRegistration
}

/** The previous version's `data` field, as far as ending such a session needs it. */
export interface PreviousData {
  readonly sub?: unknown
  readonly sid?: unknown
}

/** CREATE's arguments after the key, in its order (redis-scripts.ts). */
export function recordFields(session: SessionData, ix: IndexNames) {
  return [
    sealField(session, 'login', loginFields(session)),
    sealField(session, 'tokens', session.tokens),
    session.version,
    session.idleExpiresAt,
    session.absoluteExpiresAt,
    JSON.stringify(ix),
    session.createdAt,
    refreshExpiry(session.tokens),
  ] as const
}

/** UPDATE_TOKENS's arguments after the key and the expected version: the sealed tokens and their refresh expiry. */
export function tokenFields(ref: SessionRef, tokens: TokenSet) {
  return [sealField(ref, 'tokens', tokens), refreshExpiry(tokens)] as const
}

/** What ending a record of the previous version hands back, from its `data` and plaintext `tokens`. */
export function previousSession(data: string, tokens: string | null): EndedSession {
  const { refreshToken } = tokens === null ? {} : parsed<TokenSet>(tokens)
  const { sub, sid } = parsed<PreviousData>(data)
  return {
    ...(typeof refreshToken === 'string' ? { refreshToken } : {}),
    ...(typeof sub === 'string' ? { sub } : {}),
    ...(typeof sid === 'string' ? { sid } : {}),
  }
}

/** A row of `login, tokens, v, idle, abs`, opened with the request's key. */
export function openRecord(ref: SessionRef, row: (string | null)[], now: number): SessionData | undefined {
  const [login, tokens] = row
  const { version, idle, abs: absoluteExpiresAt } = clearFields(row)
  if (now >= absoluteExpiresAt) return undefined
  const fixed = openField(ref, 'login', login)
  return {
    id: ref.id,
    key: ref.key,
    idp: fixed.idp ?? SHORTHAND_PROVIDER,
    ...(fixed.registration ? { registration: fixed.registration } : {}),
    sub: fixed.sub,
    sid: fixed.sid,
    claims: fixed.claims,
    tokens: openField(ref, 'tokens', tokens),
    version,
    createdAt: fixed.createdAt,
    absoluteExpiresAt,
    idleExpiresAt: idle,
    logoutHandle: fixed.logoutHandle,
    ...(fixed.dpopKey ? { dpopKey: fixed.dpopKey } : {}),
    ...(fixed.resources ? { resources: fixed.resources } : {}),
  }
}

/** The session id of a record's key (`RedisKeys.session`'s inverse); `undefined` for another key under the prefix. */
export function sessionIdOf(keys: RedisKeys, key: string): string | undefined {
  const { sessions } = keys
  if (!key.startsWith(`${sessions}{`) || !key.endsWith('}')) return undefined
  return key.slice(sessions.length + 1, -1)
}

/** A token set's refresh expiry as CREATE and UPDATE_TOKENS take it: epoch ms, or '' when the IdP did not say. */
function refreshExpiry(tokens: TokenSet): string {
  const at = tokens.refreshTokenExpiresAt
  return at === undefined || !Number.isFinite(at) ? '' : String(Math.floor(at))
}

/**
 * The refresh token's expiry a record's `rx` says, when it is of the
 * tokens' current version `v`: an instance of a release before `rx` was
 * written rotates the tokens without it, and the expiry of a token rotated
 * away says nothing of the one that replaced it.
 */
export function refreshExpiryOf(rx: string | null, version: string | null): number | undefined {
  const [, of, at] = /^(\d{1,16}):(\d{0,16})$/.exec(rx ?? '') ?? []
  return at && of === version ? Number(at) : undefined
}

/** The latest time a `Date` holds (ECMA-262: 8.64e15 ms from the epoch): no expiry the gateway writes is later. */
const LATEST_TIME = 8.64e15

/**
 * The clear fields of a row of `login, tokens, v, idle, abs`, as the
 * gateway writes them: a version (a count) and two epoch-ms times. They
 * are not sealed, so they are checked: a record changed in Redis whose
 * expiries are not times would be served with no expiry checked here and
 * fail where a time is printed (a 500 at /auth/user), and one whose
 * version is not a count would let a refresh spend the refresh token, fail
 * its compare-and-set and replay it. Such a record is refused as a changed
 * seal is (`malformed`): 401, one warning, the record left to expire.
 */
export function clearFields(row: readonly (string | null)[]): { version: number; idle: number; abs: number } {
  const [, , v, idle, abs] = row
  const fields = { version: count(v), idle: time(idle), abs: time(abs) }
  if (Number.isNaN(fields.version) || Number.isNaN(fields.idle) || Number.isNaN(fields.abs))
    throw gatehouseError('GATEHOUSE_ERR_SESSION_UNREADABLE', undefined, 'malformed')
  return fields
}

/** A count as HINCRBY keeps one, or NaN. */
function count(text: string | null | undefined): number {
  const n = text ? Number(text) : Number.NaN
  return Number.isSafeInteger(n) && n >= 0 ? n : Number.NaN
}

/** An epoch-ms time as the store writes one, or NaN. */
function time(text: string | null | undefined): number {
  const ms = text ? Number(text) : Number.NaN
  return Number.isFinite(ms) && ms >= 0 && ms <= LATEST_TIME ? ms : Number.NaN
}

/** The registration an `ix` field records, if it records one as a session writes it. */
export function registrationIn(ix: string): ClientRegistration | undefined {
  const { registration } = parsed<IndexNames>(ix)
  return typeof registration?.issuer === 'string' && typeof registration.clientId === 'string'
    ? { issuer: registration.issuer, clientId: registration.clientId }
    : undefined
}

/**
 * The clear JSON fields, parsed without trusting them: they are not sealed,
 * so a value someone changed in Redis reads as empty instead of failing
 * the request that deletes the session.
 */
export function parsed<T extends object>(text: string): Partial<T> {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null ? (value as Partial<T>) : {}
  } catch {
    return {}
  }
}

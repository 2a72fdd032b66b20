/**
 * The fields of a session record that a shared store keeps sealed with the
 * session's own key (`SessionKey`), and how they are sealed: JSON, through
 * `SealingKey`, with a context naming the session and the field, so a
 * sealed value copied to another session or another field does not open.
 *
 * What stays in the clear, and why, is in docs/security.md: only what a
 * request without a cookie needs (expiry, the compare-and-set version, the
 * keyed hashes that back-channel logout finds sessions by).
 *
 * The DPoP key is a login field: made with the session, fixed for its life.
 */
import type { Opened } from '../crypto/sealing-key.js'
import { gatehouseError } from '../errors.js'
import type { ClientRegistration, DpopKey, TokenSet } from '../types.js'
import type { SessionData, SessionRef } from './types.js'

/** What a login fixes for the session's life: who, and what the IdP said of them. */
export interface LoginFields {
  /** Absent in a record sealed before sessions kept their provider: the shorthand's (`default`). */
  readonly idp?: string
  /** Absent in a record sealed before sessions kept it. */
  readonly registration?: ClientRegistration
  readonly sub: string
  readonly sid?: string
  readonly claims: Readonly<Record<string, unknown>>
  readonly createdAt: number
  readonly logoutHandle: string
  /** The session's DPoP private key: made at login, it lives as long as the session. */
  readonly dpopKey?: DpopKey
  /** The resources the login asked for; absent in a record sealed before sessions kept them, or when not known. */
  readonly resources?: readonly string[]
}

/** Each sealed field and the type it holds. */
export interface SealedFields {
  readonly login: LoginFields
  readonly tokens: TokenSet
}

export type SealedField = keyof SealedFields

/** The login fields of a session, as sealed at create. */
export function loginFields(session: SessionData): LoginFields {
  return {
    idp: session.idp,
    ...(session.registration ? { registration: session.registration } : {}),
    sub: session.sub,
    ...(session.sid ? { sid: session.sid } : {}),
    claims: session.claims,
    createdAt: session.createdAt,
    logoutHandle: session.logoutHandle,
    ...(session.dpopKey ? { dpopKey: session.dpopKey } : {}),
    ...(session.resources ? { resources: session.resources } : {}),
  }
}

export function sealField<F extends SealedField>(ref: SessionRef, field: F, value: SealedFields[F]): string {
  return ref.key.seal(context(ref.id, field), JSON.stringify(value))
}

/**
 * Opens a field sealed for this session, or rejects with
 * `GATEHOUSE_ERR_SESSION_UNREADABLE` whose `cause` is the reason (never the
 * value): the record was tampered with, or moved, or the key is not this
 * session's.
 */
export function openField<F extends SealedField>(
  ref: SessionRef,
  field: F,
  sealed: string | null | undefined,
): SealedFields[F] {
  // A field someone deleted from the store is as unreadable as a changed one.
  const opened = typeof sealed === 'string' ? ref.key.open(context(ref.id, field), sealed) : MISSING
  if (!opened.ok) throw gatehouseError('GATEHOUSE_ERR_SESSION_UNREADABLE', undefined, opened.reason)
  return JSON.parse(opened.text) as SealedFields[F]
}

const MISSING: Opened = { ok: false, reason: 'malformed' }

function context(id: string, field: SealedField): string {
  return `session ${id} ${field}`
}

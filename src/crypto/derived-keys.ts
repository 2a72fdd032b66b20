/**
 * Every key Gatehouse derives from the operator's `session.secrets`, side by
 * side, so no two uses can share one: HKDF-SHA-256 (RFC 5869) from
 * node:crypto, one `info` label per use (§3.2). Each list follows the
 * secrets' order, so rotating is `secrets: [new, old]`: the first key seals
 * or names what is written, and every key opens or finds what was.
 */
import { createHmac, hkdfSync } from 'node:crypto'
import { SEALING_KEY_BYTES, SealingKey } from './sealing-key.js'

const SALT = 'gatehouse'

function derive(secret: string, label: string, bytes: number): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, SALT, label, bytes))
}

/**
 * A secret's public name: it marks what that secret's keys sealed, so a
 * reader picks the right key after a rotation. Derived, so it reveals
 * nothing of the secret.
 */
function secretId(secret: string): string {
  return derive(secret, 'gatehouse key id v1', 6).toString('base64url')
}

/**
 * The session cookie's secretbox keys (libsodium, inside @fastify/secure-session).
 * A named frontend (`frontends[].name`) has keys of its own, so its cookies
 * do not open in another frontend; `''` keeps the keys of before frontends.
 */
export function deriveCookieKeys(secrets: readonly string[], frontend = ''): Buffer[] {
  const label = frontend === '' ? 'gatehouse session cookie v1' : `gatehouse session cookie v1 ${frontend}`
  return secrets.map((secret) => derive(secret, label, 32))
}

/**
 * Keys for the client-credentials tokens cached in a shared store. No
 * browser is involved in those, so no cookie can carry their key: it comes
 * from the secrets every instance holds, which a copy of the store lacks.
 */
export function clientTokenKeys(secrets: readonly string[]): SealingKey[] {
  return secrets.map(
    (secret) =>
      new SealingKey(secretId(secret), derive(secret, 'gatehouse client-token cache v1', SEALING_KEY_BYTES)),
  )
}

/**
 * The name a shared store counts a client address under (the sign-in rate
 * limit, `src/http/rate-limit-key.ts`): 128 bits of a keyed hash
 * (HMAC-SHA-256, RFC 2104), so no key in the store, its dumps or its
 * replicas names a client's address, while each address still has one
 * counter on every instance. The first secret's key alone: a counter lives
 * one window, and a rotation starts the counts again.
 */
export function addressNames(secrets: readonly string[]): (address: string) => string {
  if (secrets.length === 0) throw new TypeError('at least one secret is needed')
  const key = derive(secrets[0]!, 'gatehouse rate-limit address v1', 32)
  return (address) => createHmac('sha256', key).update(address).digest('base64url').slice(0, 22)
}

/** What a store indexes sessions by. */
export type IndexedClaim = 'sub' | 'sid'

/**
 * Keyed hashes (HMAC-SHA-256, RFC 2104) of the values a shared store
 * indexes sessions by, so an index key names no user and no IdP session,
 * yet back-channel logout, which comes without a cookie, still finds them.
 */
export class IndexHashes {
  readonly #keys: readonly Buffer[]

  constructor(secrets: readonly string[]) {
    if (secrets.length === 0) throw new TypeError('at least one secret is needed')
    this.#keys = secrets.map((secret) => derive(secret, 'gatehouse session index v1', 32))
  }

  /** The name a value is written under: the first secret's hash. */
  current(claim: IndexedClaim, value: string): string {
    return hash(this.#keys[0]!, claim, value)
  }

  /** Every name a value may have been written under, the current first. */
  all(claim: IndexedClaim, value: string): string[] {
    return [...new Set(this.#keys.map((key) => hash(key, claim, value)))]
  }
}

function hash(key: Buffer, claim: IndexedClaim, value: string): string {
  // The claim's name goes in too, so a `sub` equal to some `sid` hashes apart.
  return createHmac('sha256', key).update(`${claim}\0${value}`).digest('base64url')
}

/**
 * Authenticated encryption of small records at rest, for what Gatehouse
 * keeps in a shared store: AES-256-GCM from node:crypto (NIST SP 800-38D),
 * a fresh random 96-bit nonce for every seal, a 128-bit tag.
 *
 * A sealed value is text, `a1.<key id>.<base64url(nonce | ciphertext | tag)>`.
 * Its associated data is `gatehouse a1 <key id> <context>`, where the caller's
 * context names what the value is and whose (`session <id> tokens`), so a
 * value moved to another record, another field or another key fails to open,
 * exactly as a tampered one does.
 *
 * Random nonces are safe here because no key seals many values: a session's
 * key seals one per token refresh, and a key derived from the session
 * secrets one per client-credentials token lifetime; SP 800-38D §8.3 allows
 * 2^32 random-nonce seals per key.
 */
import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type KeyObject,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto'
import { inspect } from 'node:util'

/** The envelope's format: AES-256-GCM, 96-bit random nonce, 128-bit tag. */
const FORMAT = 'a1'
const NONCE_BYTES = 12
const TAG_BYTES = 16

/** Bytes of a sealing key. */
export const SEALING_KEY_BYTES = 32

/** Key ids are short and safe inside the dotted envelope. */
const KEY_ID = /^[A-Za-z0-9_-]{1,16}$/

/**
 * Why a value did not open. `unknown-key`: sealed under a key the caller
 * does not hold (a secret rotated out); `refused`: the tag did not verify
 * (tampered, moved to another record or field, or the wrong key under the
 * right id); `malformed`: not an envelope at all.
 */
export type UnsealReason = 'unknown-key' | 'refused' | 'malformed'

/**
 * What `open` gives back: the plaintext, or why there is none. Never the
 * sealed value or the key, so a caller can log the result as it is.
 */
export type Opened =
  | { readonly ok: true; readonly text: string }
  | { readonly ok: false; readonly reason: UnsealReason }

/**
 * A 256-bit key that seals and opens values. The bytes stay in a private
 * field: the key prints, logs and serialises as its id only.
 */
export class SealingKey {
  /** Goes into every envelope and its associated data; rotates with the key. */
  readonly id: string
  readonly #bytes: Buffer
  /** Made on first use: most requests only compare keys (a local-cache hit). */
  #keyObject: KeyObject | undefined

  constructor(id: string, bytes: Uint8Array) {
    if (!KEY_ID.test(id)) throw new TypeError('a sealing key id is 1 to 16 base64url characters')
    if (bytes.length !== SEALING_KEY_BYTES) throw new TypeError(`a sealing key is ${SEALING_KEY_BYTES} bytes`)
    this.id = id
    this.#bytes = Buffer.from(bytes)
  }

  get #key(): KeyObject {
    this.#keyObject ??= createSecretKey(this.#bytes)
    return this.#keyObject
  }

  /** Seals `plaintext` for `context`; a new nonce every time, so equal inputs never seal alike. */
  seal(context: string, plaintext: string): string {
    const nonce = randomBytes(NONCE_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce, { authTagLength: TAG_BYTES })
    cipher.setAAD(associatedData(this.id, context))
    const body = Buffer.concat([nonce, cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()])
    return `${FORMAT}.${this.id}.${body.toString('base64url')}`
  }

  /** Opens a value this key sealed for `context`. */
  open(context: string, sealed: string): Opened {
    return SealingKey.openWith([this], context, sealed)
  }

  /** True when both hold the same bytes, compared in constant time. */
  equals(other: SealingKey): boolean {
    return this.#bytes.length === other.#bytes.length && timingSafeEqual(this.#bytes, other.#bytes)
  }

  /** The bytes, for the one place that must carry them (the sealed session cookie). */
  exportBytes(): Buffer {
    return Buffer.from(this.#bytes)
  }

  toJSON(): string {
    return `[SealingKey ${this.id}]`
  }

  [inspect.custom](): string {
    return this.toJSON()
  }

  /** Opens with whichever of `keys` the envelope names; rotation is `[new, old]`. */
  static openWith(keys: readonly SealingKey[], context: string, sealed: string): Opened {
    const parts = sealed.split('.')
    if (parts.length !== 3 || parts[0] !== FORMAT) return MALFORMED
    const [, id, encoded] = parts as [string, string, string]
    const key = keys.find((k) => k.id === id)
    if (!key) return UNKNOWN_KEY
    const body = Buffer.from(encoded, 'base64url')
    if (body.length < NONCE_BYTES + TAG_BYTES) return MALFORMED
    const decipher = createDecipheriv('aes-256-gcm', key.#key, body.subarray(0, NONCE_BYTES), {
      authTagLength: TAG_BYTES,
    })
    decipher.setAAD(associatedData(id, context))
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES))
    try {
      const text = decipher.update(body.subarray(NONCE_BYTES, body.length - TAG_BYTES))
      return { ok: true, text: Buffer.concat([text, decipher.final()]).toString('utf8') }
    } catch {
      // node:crypto's only word on a failed tag is "Unsupported state or
      // unable to authenticate data"; the reason says as much.
      return REFUSED
    }
  }
}

const MALFORMED: Opened = { ok: false, reason: 'malformed' }
const UNKNOWN_KEY: Opened = { ok: false, reason: 'unknown-key' }
const REFUSED: Opened = { ok: false, reason: 'refused' }

function associatedData(id: string, context: string): Buffer {
  return Buffer.from(`gatehouse ${FORMAT} ${id} ${context}`, 'utf8')
}

/**
 * DPoP key pairs (RFC 9449): made with jose on WebCrypto, kept as a private
 * JWK in the sealed session record, and turned back into a `CryptoKeyPair`
 * when a proof must be signed (src/dpop/proofs.ts remembers the result).
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK } from 'jose'
import type { DpopAlgorithm } from '../config/types.js'
import { gatehouseError } from '../errors.js'
import type { DpopKey } from '../types.js'

/** The members of a private JWK that are not part of its public key (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2). */
const PRIVATE_MEMBERS = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth'])

/**
 * Most key pairs waiting or being made at once, per process, before a
 * sign-in's is refused. Pairs are made one at a time (`KeyPairQueue`), so
 * the last place waits for every pair before it: an RSA pair (PS256, which
 * FAPI 2.0 allows) is about 50 ms of CPU, so 64 places is about 3 s for
 * the last, an EC or Ed25519 pair about 1 ms, 64 ms. A browser held longer
 * than that is better told at once to come back than kept waiting for
 * pairs whose sign-ins may never finish; the per-IP rate limit bounds one
 * client, not many (docs/security.md).
 */
export const MAX_KEY_PAIRS_WAITING = 64

/** Who a key pair is for: a sign-in, refused past the bound, or the gateway's own client-credentials token, which waits. */
export type KeyPairFor = 'sign-in' | 'client'

export interface KeyPairQueueOptions {
  /** Most pairs waiting or being made at once before a sign-in's is refused; default `MAX_KEY_PAIRS_WAITING`. */
  readonly max?: number
}

/**
 * Key pairs made one at a time, each new one waiting for the one before.
 * Every `/auth/login` makes a pair, and anyone may call it; WebCrypto
 * makes it on libuv's thread pool (four threads), which dns.lookup for each
 * upstream dial, fs and the RSA upstream proofs share. An RSA pair is
 * about 50 ms of CPU: made side by side, 40 sign-in starts held a
 * dns.lookup for 5 s. One at a time, they take one thread; sign-in starts
 * then wait for each other, at most `max` of them: past it a sign-in's pair
 * is refused at once (`GATEHOUSE_ERR_DPOP_KEYS_BUSY`, a 503 with
 * `Retry-After`). A client-credentials pair is the gateway's own, one per
 * token fetch a route's scopes make, and waits whatever the count: refused,
 * every request of its route would fail while sign-ins fill the queue.
 */
export class KeyPairQueue {
  readonly #max: number
  /** The pair being made, or the last one. */
  #making: Promise<unknown> = Promise.resolve()
  #size = 0

  constructor(options: KeyPairQueueOptions = {}) {
    const max = options.max ?? MAX_KEY_PAIRS_WAITING
    if (!Number.isSafeInteger(max) || max < 1)
      throw new RangeError(`KeyPairQueue max must be a whole number of at least 1, not ${max}`)
    this.#max = max
  }

  /** Pairs waiting or being made. */
  get size(): number {
    return this.#size
  }

  /** A new key pair, made after those asked for before it; a sign-in's is refused when `max` are waiting. */
  make(alg: DpopAlgorithm, kind: KeyPairFor): Promise<DpopKey> {
    if (kind === 'sign-in' && this.#size >= this.#max)
      return Promise.reject(gatehouseError('GATEHOUSE_ERR_DPOP_KEYS_BUSY'))
    this.#size++
    const made = this.#making.then(() => makeKeyPair(alg)).finally(() => this.#size--)
    this.#making = made.catch(() => {})
    return made
  }
}

/** The process's one queue: the thread pool it spares is the process's. */
const keyPairs = new KeyPairQueue()

/** A new key pair for one session (or the gateway's client-credentials token), as the record keeps it; made one at a time. */
export function generateDpopKey(alg: DpopAlgorithm, kind: KeyPairFor = 'sign-in'): Promise<DpopKey> {
  return keyPairs.make(alg, kind)
}

async function makeKeyPair(alg: DpopAlgorithm): Promise<DpopKey> {
  // Extractable only for this export; the pair used to sign is imported anew.
  const { privateKey } = await generateKeyPair(alg, { extractable: true })
  const jwk = (await exportJWK(privateKey)) as Record<string, string>
  return { alg, jwk }
}

/**
 * The key pair to sign with. The private key is not extractable; the public
 * key is, as oauth4webapi needs to put it in each proof's `jwk` header.
 */
export async function dpopKeyPair(key: DpopKey): Promise<CryptoKeyPair> {
  const [privateKey, publicKey] = await Promise.all([
    importJWK({ ...key.jwk }, key.alg, { extractable: false }),
    importJWK(publicJwk(key), key.alg, { extractable: true }),
  ])
  return { privateKey, publicKey } as CryptoKeyPair
}

/** The key's public members, as a proof's `jwk` header carries them (RFC 9449 §4.2). */
export function publicJwk(key: DpopKey): Record<string, string> {
  return Object.fromEntries(Object.entries(key.jwk).filter(([name]) => !PRIVATE_MEMBERS.has(name)))
}

/** The key's JWK thumbprint (RFC 7638), as `dpop_jkt` and `cnf.jkt` carry it (RFC 9449 §6.1, §10). */
export function dpopThumbprint(key: DpopKey): Promise<string> {
  // RFC 7638 §3.2 takes the required public members only, so the private ones are ignored.
  return calculateJwkThumbprint({ ...key.jwk })
}

/** A name for the key made of its public members only, unique per key pair. */
export function publicKeyId(key: DpopKey): string {
  const { jwk } = key
  return `${key.alg} ${jwk.crv ?? ''} ${jwk.x ?? jwk.n ?? ''} ${jwk.y ?? ''}`
}

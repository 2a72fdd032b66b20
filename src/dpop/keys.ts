/**
 * DPoP key pairs (RFC 9449): made with jose on WebCrypto, kept as a private
 * JWK in the sealed session record, and turned back into a `CryptoKeyPair`
 * when a proof must be signed (src/dpop/proofs.ts remembers the result).
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK } from 'jose'
import type { DpopAlgorithm } from '../config/types.js'
import type { DpopKey } from '../types.js'

/** The members of a private JWK that are not part of its public key (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2). */
const PRIVATE_MEMBERS = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth'])

/**
 * The pair being made, or the last one: each new one waits for it. Every
 * `/auth/login` makes a pair, and anyone may call it; WebCrypto makes it
 * on libuv's thread pool (four threads), which dns.lookup for each
 * upstream dial, fs and the RSA upstream proofs share. An RSA pair is
 * about 50 ms of CPU: made side by side, 40 sign-in starts held a
 * dns.lookup for 5 s. One at a time, they take one thread; sign-in starts
 * then wait for each other, and the per-IP rate limit bounds how many.
 */
let making: Promise<unknown> = Promise.resolve()

/** A new key pair for one session, as the record keeps it; pairs are made one at a time. */
export function generateDpopKey(alg: DpopAlgorithm): Promise<DpopKey> {
  const made = making.then(() => makeKeyPair(alg))
  making = made.catch(() => {})
  return made
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

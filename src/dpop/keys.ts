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

/** A new key pair for one session, as the record keeps it. */
export async function generateDpopKey(alg: DpopAlgorithm): Promise<DpopKey> {
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

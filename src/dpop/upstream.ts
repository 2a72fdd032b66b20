import { createHash, createPrivateKey, type KeyObject, randomBytes, randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { createSigner } from 'fast-jwt'
import { CompactSign, type CryptoKey, importJWK } from 'jose'
import type { DpopKey } from '../types.js'
import { hasChallenge } from '../www-authenticate.js'
import { KeyCache, type KeyHolder } from './key-cache.js'
import { publicJwk, publicKeyId } from './keys.js'
import { type DpopNonces, usableNonce } from './nonces.js'

/** A proof's claims (RFC 9449 §4.2). */
interface Claims {
  readonly iat: number
  readonly jti: string
  readonly htm: string
  readonly htu: string
  readonly ath: string
  readonly nonce?: string
}

/**
 * What signs one key's upstream proofs, made once per key: the key
 * imported, the protected header (with the public JWK) built. `ath` is
 * remembered for the last token, which a session sends many times.
 */
interface Signer {
  /** A string when the signature is made in this tick, else a promise of it. */
  readonly sign: (claims: Claims) => string | Promise<string>
  lastToken: string
  lastAth: string
}

type FastJwtAlgorithm = 'ES256' | 'ES384' | 'ES512' | 'EdDSA'

/** fast-jwt's name for each of our algorithms it signs in process (its `EdDSA` is Ed25519 here). */
const SYNCHRONOUS = new Map<string, FastJwtAlgorithm>([
  ['ES256', 'ES256'],
  ['ES384', 'ES384'],
  ['ES512', 'ES512'],
  ['Ed25519', 'EdDSA'],
  ['EdDSA', 'EdDSA'],
])

const encoder = new TextEncoder()

/**
 * DPoP proofs for upstream requests (RFC 9449 §7): `Authorization: DPoP`
 * and a `DPoP` header with `htm`, `htu` (the URL as sent, without query or
 * fragment), `ath` (the token's hash), `iat`, a unique `jti` and the
 * upstream origin's latest nonce. One proof goes with every proxied
 * request, so this is the hot path of a DPoP route, and one signature is
 * its floor. Nothing else is repeated per request that can be done once
 * per key or token: no key import, no JWK export or thumbprint, the header
 * built once, `ath` by node:crypto's synchronous SHA-256 and only when the
 * token changes.
 *
 * EC and Ed25519 keys sign with fast-jwt, which calls node:crypto's
 * synchronous `sign` on the request's own tick: about 20 µs of CPU for
 * ES256 on the bench machine. WebCrypto (jose) signs the same JWS on
 * libuv's thread pool for about 39 µs, and the request waits a promise
 * for it (docs/performance.md: 115 against 84 µs per DPoP request).
 * RSA keys stay with jose: an RSA signature is a millisecond, which the
 * event loop must not spend. The IdP's proofs stay oauth4webapi's
 * (src/dpop/proofs.ts); a test checks both are equal in form.
 */
export class UpstreamProofs implements KeyHolder {
  readonly #nonces: DpopNonces
  /** Signers kept ready (`KeyCache`: as many as `DpopProofs` keeps handles, dropped unused or at the session's end). */
  readonly #signers: KeyCache<Signer | Promise<Signer>>

  /**
   * `nonces`: the upstreams' own, never an IdP's (`DpopProofs.nonces`).
   * RFC 9449 §9: an authorization server's nonces and a resource server's
   * "will be only accepted by the server that issued them", and an
   * upstream may share its origin with the IdP (one host name, `/auth`
   * to the IdP and `/api` to the APIs). `now`: the clock a signer's idle
   * time is measured by, epoch ms.
   */
  constructor(nonces: DpopNonces, now: () => number = Date.now) {
    this.#nonces = nonces
    this.#signers = new KeyCache(now)
  }

  /**
   * The `DPoP` header for `method` on `url` with `accessToken`: a string
   * when it could be made at once (an EC or Ed25519 key already seen),
   * else a promise of it.
   */
  proof(key: DpopKey, method: string, url: URL, accessToken: string): string | Promise<string> {
    const signer = this.#signer(key)
    if (signer instanceof Promise) return signer.then((ready) => this.#sign(ready, method, url, accessToken))
    return this.#sign(signer, method, url, accessToken)
  }

  /** Remembers the nonce an upstream answer carries (RFC 9449 §9), for its origin. */
  remember(origin: string, headers: IncomingHttpHeaders): void {
    const nonce = headers['dpop-nonce']
    if (typeof nonce === 'string') this.#nonces.remember(origin, nonce)
  }

  forget(id: string): void {
    this.#signers.forget(id)
  }

  dropIdle(): void {
    this.#signers.dropIdle()
  }

  holds(id: string): boolean {
    return this.#signers.holds(id)
  }

  #signer(key: DpopKey): Signer | Promise<Signer> {
    const id = publicKeyId(key)
    const known = this.#signers.use(id)
    if (known !== undefined) return known
    const algorithm = SYNCHRONOUS.get(key.alg)
    if (algorithm !== undefined) {
      const signer = synchronousSigner(key, algorithm)
      this.#signers.set(id, signer)
      return signer
    }
    const made = webCryptoSigner(key)
    this.#signers.set(id, made)
    // Once ready, kept as a value: later proofs skip a promise hop.
    made.then(
      (ready) => this.#signers.replace(id, ready),
      // A key that failed to import is tried again by the next request.
      () => this.#signers.forget(id),
    )
    return made
  }

  #sign(signer: Signer, method: string, url: URL, accessToken: string): string | Promise<string> {
    if (signer.lastToken !== accessToken) {
      signer.lastAth = createHash('sha256').update(accessToken).digest('base64url')
      signer.lastToken = accessToken
    }
    const { origin } = url
    const nonce = this.#nonces.get(origin)
    const claims: Claims = {
      iat: Math.floor(Date.now() / 1000),
      jti: randomUUID(),
      htm: method,
      htu: `${origin}${url.pathname}`,
      ath: signer.lastAth,
      ...(nonce === undefined ? {} : { nonce }),
    }
    return signer.sign(claims)
  }
}

function synchronousSigner(key: DpopKey, algorithm: FastJwtAlgorithm): Signer {
  const sign = createSigner({
    key: signingKey(createPrivateKey({ key: { ...key.jwk }, format: 'jwk' }), algorithm),
    algorithm,
    // The header's `alg` is ours (`Ed25519` is RFC 9864's name, which jose
    // and oauth4webapi write); fast-jwt's own name only picks the signature.
    header: { alg: key.alg, typ: 'dpop+jwt', jwk: publicJwk(key) },
  })
  return { sign: (claims) => sign(claims), lastToken: '', lastAth: '' }
}

/**
 * The key as fast-jwt takes it. fast-jwt 6 takes key text only (a
 * KeyObject is refused), and remembers the algorithm of the last 1,000
 * keys by their text, in its own module, past any signer's life (a
 * heap dump would show keys of ended sessions). An EC key goes as PKCS#8
 * encrypted under a random passphrase that is dropped once the signer has
 * opened it: fast-jwt detects such a key by its PEM header alone, and what
 * it remembers then is ciphertext no one can open. The encryption is
 * PBKDF2's, about 1 ms per signer made, once per key. fast-jwt refuses an
 * encrypted key for EdDSA, so an Ed25519 key's text stays in that cache
 * until 1,000 later keys push it out (docs/security.md).
 */
function signingKey(
  privateKey: KeyObject,
  algorithm: FastJwtAlgorithm,
): string | { key: string; passphrase: string } {
  if (algorithm === 'EdDSA') return String(privateKey.export({ format: 'pem', type: 'pkcs8' }))
  const passphrase = randomBytes(32).toString('base64url')
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase })
  return { key: String(pem), passphrase }
}

async function webCryptoSigner(key: DpopKey): Promise<Signer> {
  const privateKey = (await importJWK({ ...key.jwk }, key.alg, { extractable: false })) as CryptoKey
  const header = { alg: key.alg, typ: 'dpop+jwt', jwk: publicJwk(key) }
  return {
    sign: (claims) =>
      new CompactSign(encoder.encode(JSON.stringify(claims))).setProtectedHeader(header).sign(privateKey),
    lastToken: '',
    lastAth: '',
  }
}

/**
 * RFC 9449 §9: the resource server asks for a nonce with a 401 whose
 * `WWW-Authenticate` is a DPoP challenge with `error="use_dpop_nonce"`,
 * and the nonce in `DPoP-Nonce`.
 */
export function asksForNonce(headers: IncomingHttpHeaders): boolean {
  // A nonce no proof may carry would be refused again: not worth a replay.
  return usableNonce(headers['dpop-nonce']) && challengesForNonce(headers)
}

/** Whether `WWW-Authenticate` carries a DPoP `use_dpop_nonce` challenge, whatever nonce came with it. */
export function challengesForNonce(headers: IncomingHttpHeaders): boolean {
  return dpopChallenge(headers, 'use_dpop_nonce')
}

/**
 * RFC 9449 §7.1: a resource server refuses the proof, not the token, with
 * a DPoP challenge naming `invalid_dpop_proof` (an `htu` or `htm` it reads
 * otherwise, an `iat` off its clock, an algorithm it does not take).
 */
export function refusesProof(headers: IncomingHttpHeaders): boolean {
  return dpopChallenge(headers, 'invalid_dpop_proof')
}

/**
 * Only a challenge of the `DPoP` scheme (RFC 9449 §7.1, scheme names are
 * case-insensitive, RFC 9110 §11.1) counts, among however many the header
 * carries: `Bearer realm="dpop", error="use_dpop_nonce"` is a Bearer
 * challenge, and was read as DPoP's while any mention of the word did.
 */
function dpopChallenge(headers: IncomingHttpHeaders, error: string): boolean {
  return hasChallenge(headers['www-authenticate'], 'dpop', [error])
}

import { createHash, randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { CompactSign, type CryptoKey, importJWK, type JWK } from 'jose'
import { BoundedMap } from '../bounded-map.js'
import type { DpopKey } from '../types.js'
import { publicJwk, publicKeyId } from './keys.js'
import type { DpopNonces } from './nonces.js'
import type { DpopProofs } from './proofs.js'

/**
 * What signs one key's upstream proofs: the private key imported once as a
 * non-extractable `CryptoKey`, and the protected header (with the public
 * JWK) built once. `ath` is remembered for the last token, which a session
 * sends many times.
 */
interface Signer {
  readonly privateKey: CryptoKey
  readonly header: { readonly alg: string; readonly typ: 'dpop+jwt'; readonly jwk: JWK }
  lastToken: string
  lastAth: string
}

/** Signers kept ready, most recently used first; as many as `DpopProofs` keeps handles. */
const MAX_SIGNERS = 10_000

const encoder = new TextEncoder()

/**
 * DPoP proofs for upstream requests (RFC 9449 §7): `Authorization: DPoP`
 * and a `DPoP` header with `htm`, `htu` (the URL as sent, without query or
 * fragment), `ath` (the token's hash), `iat`, a unique `jti` and the
 * upstream origin's latest nonce. One proof goes with every proxied
 * request, so this is the hot path of a DPoP route: jose signs the JWS
 * (one ES256 signature, the floor), and nothing else is repeated per
 * request that can be done once per key or token: no key import, no JWK
 * export or thumbprint, the header built once, `ath` by node:crypto's
 * synchronous SHA-256 and only when the token changes. The IdP's proofs
 * stay oauth4webapi's (src/dpop/proofs.ts); a test checks both are equal
 * in form.
 */
export class UpstreamProofs {
  readonly #nonces: DpopNonces
  readonly #signers = new BoundedMap<string, Signer | Promise<Signer>>(MAX_SIGNERS)

  constructor(proofs: DpopProofs) {
    this.#nonces = proofs.nonces
  }

  /** The `DPoP` header for `method` on `url` with `accessToken`. */
  async proof(key: DpopKey, method: string, url: URL, accessToken: string): Promise<string> {
    const id = publicKeyId(key)
    let signer = this.#signers.use(id)
    if (signer === undefined) {
      const made = makeSigner(key)
      this.#signers.set(id, made)
      // Once ready, kept as a value: later proofs skip a promise hop.
      made.then(
        (ready) => this.#signers.set(id, ready),
        // A key that failed to import is tried again by the next request.
        () => this.#signers.delete(id),
      )
      signer = made
    }
    const ready = signer instanceof Promise ? await signer : signer
    if (ready.lastToken !== accessToken) {
      ready.lastAth = createHash('sha256').update(accessToken).digest('base64url')
      ready.lastToken = accessToken
    }
    const { origin } = url
    const nonce = this.#nonces.get(origin)
    const claims = {
      iat: Math.floor(Date.now() / 1000),
      jti: randomUUID(),
      htm: method,
      htu: `${origin}${url.pathname}`,
      ath: ready.lastAth,
      ...(nonce === undefined ? {} : { nonce }),
    }
    return new CompactSign(encoder.encode(JSON.stringify(claims)))
      .setProtectedHeader(ready.header)
      .sign(ready.privateKey)
  }

  /** Remembers the nonce an upstream answer carries (RFC 9449 §9), for its origin. */
  remember(origin: string, headers: IncomingHttpHeaders): void {
    const nonce = headers['dpop-nonce']
    if (typeof nonce === 'string') this.#nonces.remember(origin, nonce)
  }
}

async function makeSigner(key: DpopKey): Promise<Signer> {
  const privateKey = await importJWK({ ...key.jwk }, key.alg, { extractable: false })
  return {
    privateKey: privateKey as CryptoKey,
    header: { alg: key.alg, typ: 'dpop+jwt', jwk: publicJwk(key) },
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
  const challenge = headers['www-authenticate']
  if (challenge === undefined || typeof headers['dpop-nonce'] !== 'string') return false
  const values = Array.isArray(challenge) ? challenge : [challenge]
  return values.some((v) => /\bdpop\b/i.test(v) && /\berror\s*=\s*"?use_dpop_nonce\b/i.test(v))
}

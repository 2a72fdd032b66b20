/** What the tests see of DPoP at the dev IdP: the proofs it was sent, and the key a token is bound to. */
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, type JWK } from 'jose'
import type { KoaContextWithOIDC } from 'oidc-provider'
import type { DevIdp } from '../../dev/idp.js'

export interface SeenProof {
  /** Thumbprint (RFC 7638) of the proof's key; filled in a moment after the proof is seen. */
  jkt: string
  readonly jti: string
  readonly htu: string
  readonly nonce: unknown
  readonly grant: string
  /** The public key, as the proof's header carried it. */
  readonly jwk: JWK
}

/** Every DPoP proof the IdP's token endpoint answered, with its key's thumbprint, in order. */
export function watchProofs(idp: DevIdp): SeenProof[] {
  const proofs: SeenProof[] = []
  const seen = (ctx: KoaContextWithOIDC) => {
    const proof = ctx.get('dpop')
    if (!proof) return
    const { jwk } = decodeProtectedHeader(proof)
    const claims = decodeJwt(proof)
    // Recorded synchronously, so the order is the IdP's: the thumbprint follows.
    const entry: SeenProof = {
      jkt: '',
      jti: String(claims.jti),
      htu: String(claims.htu),
      nonce: claims.nonce,
      grant: String((ctx.oidc?.params as { grant_type?: string } | undefined)?.grant_type ?? ''),
      jwk: jwk as JWK,
    }
    proofs.push(entry)
    void calculateJwkThumbprint(jwk as JWK).then((jkt) => {
      entry.jkt = jkt
    })
  }
  idp.provider.on('grant.success', seen)
  idp.provider.on('grant.error', seen)
  return proofs
}

/** The thumbprint the IdP bound an access or client-credentials token to (`cnf.jkt`), from its own store. */
export async function boundTo(idp: DevIdp, accessToken: string): Promise<string | undefined> {
  const token =
    (await idp.provider.AccessToken.find(accessToken)) ??
    (await idp.provider.ClientCredentials.find(accessToken))
  return (token as unknown as { jkt?: string } | undefined)?.jkt
}

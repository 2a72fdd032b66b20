/** What the tests see of DPoP at the dev IdP: the proofs it was sent, and the key a token is bound to. */
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, type JWK } from 'jose'
import type { KoaContextWithOIDC } from 'oidc-provider'
import type { Test } from 'tap'
import type { DevIdp } from '../../dev/idp.js'
import { type DpopUpstream, DpopVerifier, startDpopUpstream } from './dpop-resource-server.js'
import { login } from './login.js'
import { startObservedStack } from './observed-stack.js'

export interface SeenProof {
  /**
   * Thumbprint (RFC 7638) of the proof's key. jose computes it in a
   * promise, so it is there only once `settled()` has resolved: read
   * before, it throws rather than race.
   */
  readonly jkt: string
  readonly jti: string
  readonly htu: string
  readonly nonce: unknown
  readonly grant: string
  /** The proof's signature algorithm, as its header names it. */
  readonly alg: string
  /** The public key, as the proof's header carried it. */
  readonly jwk: JWK
}

/** The proofs seen so far, in the IdP's order; `settled()` resolves once each has its thumbprint. */
export type SeenProofs = SeenProof[] & { settled(): Promise<void> }

/** Every DPoP proof the IdP's token endpoint answered, with its key's thumbprint, in order. */
export function watchProofs(idp: DevIdp): SeenProofs {
  const pending: Promise<unknown>[] = []
  const proofs = Object.assign([] as SeenProof[], {
    settled: async () => {
      await Promise.all(pending)
    },
  })
  const seen = (ctx: KoaContextWithOIDC) => {
    const proof = ctx.get('dpop')
    if (!proof) return
    const { jwk, alg } = decodeProtectedHeader(proof)
    const claims = decodeJwt(proof)
    let jkt: string | undefined
    // Recorded synchronously, so the order is the IdP's: the thumbprint follows.
    proofs.push({
      get jkt() {
        if (jkt === undefined) throw new Error("a proof's thumbprint read before `await proofs.settled()`")
        return jkt
      },
      jti: String(claims.jti),
      htu: String(claims.htu),
      nonce: claims.nonce,
      alg: String(alg),
      grant: String((ctx.oidc?.params as { grant_type?: string } | undefined)?.grant_type ?? ''),
      jwk: jwk as JWK,
    })
    pending.push(
      calculateJwkThumbprint(jwk as JWK).then((thumbprint) => {
        jkt = thumbprint
      }),
    )
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

/**
 * An observed stack with `oidc.dpop` on and the IdP binding access tokens
 * (60 s ones) to the proof's key, and one browser signed in to it.
 */
export async function signedInWithDpop(t: Test) {
  const stack = await startObservedStack(t, {
    accessTokenTtl: 60,
    config: { oidc: { dpop: true } },
    client: { dpopBoundAccessTokens: true },
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  return { stack, base, jar }
}

/**
 * A DPoP upstream that checks each token's binding at the IdP `idp()` gives
 * (the IdP may start after it, as the gateway's routes must name it first)
 * and records the key thumbprint of each bound token it is sent, in order;
 * closed when `t` ends.
 */
export async function keyRecordingDpopUpstream(
  t: Test,
  idp: () => DevIdp,
): Promise<{ upstream: DpopUpstream; jkts: string[] }> {
  const jkts: string[] = []
  const upstream = await startDpopUpstream(
    new DpopVerifier(async (token) => {
      const jkt = await boundTo(idp(), token)
      if (jkt) jkts.push(jkt)
      return jkt
    }),
  )
  t.teardown(() => upstream.close())
  return { upstream, jkts }
}

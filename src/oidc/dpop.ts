/**
 * DPoP (RFC 9449) at the IdP: which algorithm the IdP takes, the nonce
 * each IdP origin last sent, and the one retry `use_dpop_nonce` allows.
 * The proofs themselves are oauth4webapi's (src/dpop/proofs.ts).
 */
import * as oauth from 'oauth4webapi'
import type { GatehouseConfig } from '../config/types.js'
import type { DpopNonces } from '../dpop/nonces.js'

type Options = Record<string, unknown> & {
  [oauth.customFetch]: (url: string, init: oauth.CustomFetchOptions<string, unknown>) => Promise<Response>
}

/**
 * Why the discovered IdP cannot take the configured DPoP keys, or
 * `undefined`. An IdP that advertises no algorithms is not refused: RFC
 * 9449 §5.1 makes `dpop_signing_alg_values_supported` optional, and the
 * token endpoint's answer says the rest.
 */
export function dpopIncompatibility(
  oidc: GatehouseConfig['oidc'],
  as: Readonly<oauth.AuthorizationServer> | undefined,
): string | undefined {
  const supported = as?.dpop_signing_alg_values_supported
  if (!oidc.dpop || !Array.isArray(supported) || supported.includes(oidc.dpopAlgorithm)) return undefined
  return `dpopAlgorithm: ${oidc.dpopAlgorithm}, but the identity provider's dpop_signing_alg_values_supported is ${supported.join(', ')}`
}

/** `options` whose fetch remembers each answer's `DPoP-Nonce` for its origin (RFC 9449 §8). */
export function rememberingNonces<O extends Options>(options: O, nonces: DpopNonces): O {
  const send = options[oauth.customFetch]
  return {
    ...options,
    [oauth.customFetch]: async (url: string, init: oauth.CustomFetchOptions<string, unknown>) => {
      const response = await send(url, init)
      nonces.remember(new URL(url).origin, response.headers.get('dpop-nonce'))
      return response
    },
  }
}

/**
 * Runs `attempt`, and once more when the IdP answered `use_dpop_nonce`
 * (RFC 9449 §8: an error response that carries the nonce to use). The
 * refused request changed nothing at the IdP, so the retry replays no
 * refresh token; it carries a new proof, with a new `jti` and the nonce.
 * A second `use_dpop_nonce` is the IdP's answer and goes to the caller.
 */
export async function retryOnDpopNonce<T>(attempt: () => Promise<T>): Promise<T> {
  try {
    return await attempt()
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err
    return attempt()
  }
}

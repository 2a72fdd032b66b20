/**
 * DPoP (RFC 9449) at the IdP: which algorithm the IdP takes, the nonce
 * each IdP origin last sent, and the one retry `use_dpop_nonce` allows.
 * The proofs themselves are oauth4webapi's (src/dpop/proofs.ts).
 */
import * as oauth from 'oauth4webapi'
import type { GatehouseConfig } from '../config/types.js'
import { type DpopNonces, usableNonce } from '../dpop/nonces.js'
import type { DpopKey } from '../types.js'
import { quotedNames } from './quoted-names.js'

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
  // RFC 8414 §3.2 omits a list with no element; one sent all the same says the IdP takes none.
  if (supported.length === 0)
    return `dpopAlgorithm: ${oidc.dpopAlgorithm}, but the identity provider's dpop_signing_alg_values_supported is an empty list: it takes no DPoP proof`
  return `dpopAlgorithm: ${oidc.dpopAlgorithm}, but the identity provider's dpop_signing_alg_values_supported is ${quotedNames(supported)}`
}

/**
 * The token types an answer to a request with a proof may carry, for the
 * provider set at `option` (`oidc`, `identityProviders[1]`): a Bearer
 * token there is unbound (RFC 9449 §5: the IdP ignored the proof, DPoP
 * being off for this client or unknown to it). Sent upstream, it would go
 * as `DPoP` with proofs it is not bound to, and the protection asked for
 * by `oidc.dpop` would silently not be there; §5 lets the client discard
 * such an answer, and Gatehouse does, as one that failed validation. A
 * token exchange's answers are judged apart (`exchangeAnswerRefusal`).
 */
export function boundTokenTypes(option: string): oauth.RecognizedTokenTypes {
  const message = `the identity provider issued a Bearer access token to a request with a DPoP proof (RFC 9449 §5), so the token is not bound to the key; enable DPoP-bound access tokens for this client at the identity provider, or set ${option}.dpop: false`
  return {
    bearer: () => {
      // No cause: oauth4webapi's would hold the answer's body, tokens and all.
      throw new oauth.UnsupportedOperationError(message)
    },
  }
}

/**
 * The token types an answer to a request with no proof may carry: a DPoP
 * token there is bound to no key the gateway holds (RFC 9449 §5 binds to
 * the proof's key). Sent upstream as `Authorization: Bearer`, it would be
 * refused (§7.2) with a 401 that names nothing; refused here, the log
 * says which IdP did it. A token exchange's answers are judged apart
 * (`exchangeAnswerRefusal`).
 */
export function unboundTokenTypes(): oauth.RecognizedTokenTypes {
  return {
    dpop: () => {
      // No cause: oauth4webapi's would hold the answer's body, tokens and all.
      throw new oauth.UnsupportedOperationError(
        'the identity provider issued a DPoP access token to a request with no DPoP proof (RFC 9449 §5), so the token is bound to no key the gateway holds and an upstream would refuse it as a Bearer token; issue Bearer tokens to this client, or turn dpop on for the provider and the route',
      )
    },
  }
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
 * (RFC 9449 §8: an error response that carries the nonce to use) to a
 * request that carried a proof of `key`. The refused request changed
 * nothing at the IdP, so the retry replays no refresh token; it carries a
 * new proof, with a new `jti` and the nonce. A second `use_dpop_nonce` is
 * the IdP's answer and goes to the caller, as is the first to a request
 * with no proof, or one whose nonce no proof may carry (`usableNonce`):
 * there is no proof to put the nonce in, and the same request again would
 * only be refused again.
 */
export async function retryOnDpopNonce<T>(key: DpopKey | undefined, attempt: () => Promise<T>): Promise<T> {
  try {
    return await attempt()
  } catch (err) {
    if (key === undefined || !oauth.isDPoPNonceError(err) || !carriesUsableNonce(err)) throw err
    return attempt()
  }
}

/** Whether the answer behind a `use_dpop_nonce` error sent a nonce a proof may carry (RFC 9449 §8.1). */
export function carriesUsableNonce(err: unknown): boolean {
  const response =
    err instanceof oauth.ResponseBodyError || err instanceof oauth.WWWAuthenticateChallengeError
      ? err.response
      : undefined
  return usableNonce(response?.headers.get('dpop-nonce'))
}

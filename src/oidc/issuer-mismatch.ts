import * as oauth from 'oauth4webapi'
import type { IdentityProviderConfig } from '../config/types.js'
import { printable } from './translate.js'

/** Longest advertised issuer a message quotes; a real one is far shorter. */
const MAX_ISSUER = 200

/**
 * oauth4webapi refuses a discovery document whose `issuer` is not the
 * configured one (OIDC Discovery 1.0 §4.3, RFC 8414 §3.3) with a message
 * that names neither. Returns the same refusal, same code, naming both:
 * what the provider advertises (its own text, so bounded and on one line)
 * and what is configured, and whether only a trailing slash differs, the
 * common mistake. It goes through the one translation (translate.ts) as
 * the original would, so the discovery log line, `/readyz` and
 * `check --online` all say it. Any other error is returned as it is.
 */
export function namingIssuers(
  err: unknown,
  provider: Pick<IdentityProviderConfig, 'issuer' | 'option'>,
): unknown {
  if (!(err instanceof oauth.OperationProcessingError) || err.code !== oauth.JSON_ATTRIBUTE_COMPARISON) {
    return err
  }
  const cause = err.cause as { attribute?: unknown; body?: { issuer?: unknown } } | undefined
  if (cause?.attribute !== 'issuer') return err
  const advertised = String(cause.body?.issuer)
  const configured = provider.issuer
  const slash =
    advertised.replace(/\/+$/, '') === configured.replace(/\/+$/, '')
      ? ' (only the trailing slash differs)'
      : ''
  return new oauth.OperationProcessingError(
    `the identity provider advertises issuer "${printable(advertised, MAX_ISSUER)}" but ${provider.option}.issuer is "${configured}"${slash}: they must be identical (OpenID Connect Discovery 1.0 §4.3); set ${provider.option}.issuer to the advertised value if this is the provider you mean`,
    { cause: err, code: err.code },
  )
}

/**
 * oauth4webapi compares the advertised `issuer` as a URL, and one that is
 * no absolute URL (`/`, `idp.example`) fails as Node's TypeError, whose
 * message, "Invalid URL", names neither the member nor the value. Returns
 * the refusal as the mismatch's, naming both and what is configured; any
 * other error of `processDiscoveryResponse` as it is.
 */
export function unparsedIssuer(
  err: unknown,
  provider: Pick<IdentityProviderConfig, 'issuer' | 'option'>,
): unknown {
  if (!(err instanceof TypeError) || (err as { code?: unknown }).code !== 'ERR_INVALID_URL') return err
  const advertised = String((err as { input?: unknown }).input)
  return new oauth.OperationProcessingError(
    `the identity provider advertises issuer "${printable(advertised, MAX_ISSUER)}", which is not an absolute URL, but ${provider.option}.issuer is "${provider.issuer}": they must be identical (OpenID Connect Discovery 1.0 §4.3)`,
    { cause: err, code: oauth.JSON_ATTRIBUTE_COMPARISON },
  )
}

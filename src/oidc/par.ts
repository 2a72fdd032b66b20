import type * as oauth from 'oauth4webapi'
import type { IdentityProviderConfig } from '../config/types.js'

/**
 * Why no sign-in can go through this IdP with the configured `par`, or
 * `undefined`: PAR required on one side (`par: required`, or the IdP's
 * `require_pushed_authorization_requests`, RFC 9126 §5) and impossible on
 * the other (`par: off`, or no usable `pushed_authorization_request_endpoint`,
 * one of the wrong shape being read as none). The gateway's `/readyz` and
 * every sign-in say it (`OidcClient.incompatibility`), and `check --online`
 * is blocking on it: an IdP that requires PAR refuses a request sent in the
 * URL only once the browser is there, where the user sees the IdP's error.
 */
export function parIncompatibility(
  oidc: Pick<IdentityProviderConfig, 'par'>,
  as: Readonly<oauth.AuthorizationServer> | undefined,
): string | undefined {
  const endpoint = Boolean(as?.pushed_authorization_request_endpoint)
  if (oidc.par === 'required' && !endpoint)
    return 'par: required, but the identity provider does not advertise pushed_authorization_request_endpoint'
  if (as?.require_pushed_authorization_requests !== true) return undefined
  if (oidc.par === 'off')
    return 'par: off, but the identity provider requires pushed authorization requests (require_pushed_authorization_requests, RFC 9126 §5); set par: auto'
  if (!endpoint)
    return 'the identity provider requires pushed authorization requests (require_pushed_authorization_requests, RFC 9126 §5) but advertises no usable pushed_authorization_request_endpoint'
  return undefined
}

import type * as oauth from 'oauth4webapi'
import type { ClientAuthMethod, GatehouseConfig } from '../config/types.js'
import { advertisedClientAuth } from '../oidc/advertised-client-auth.js'
import type { OidcClient } from '../oidc/client.js'
import { FORM_SAFE, refusalHint, usableMethods } from '../oidc/client-auth.js'
import type { CredentialProbe } from '../oidc/credential-probe.js'
import type { OnlineReport, Row } from './online-report.js'

/**
 * Proves the client's credentials before any user tries them: one probe
 * with the configured method (see `probeCredentials`: the token endpoint,
 * then the revocation endpoint if that one's answer said neither; nothing
 * real is redeemed or revoked) and, when the IdP refuses it, one with each
 * other method Gatehouse could use and the IdP advertises, to say which
 * one works; unless its TLS server refused the client certificate, which
 * no method gets past. When no answer says either way the credentials are
 * reported as not proven (`unproven`), which does not block: nothing seen
 * rules a login out.
 */
export async function checkCredentials(
  config: GatehouseConfig,
  oidc: Pick<OidcClient, 'probeCredentials'>,
  as: Readonly<oauth.AuthorizationServer>,
): Promise<OnlineReport> {
  const { clientAuth } = config.oidc
  const rows: Row[] = []
  const hints: string[] = []
  const configured = await oidc.probeCredentials(clientAuth)
  rows.push(probeRow(clientAuth, configured, 'configured'))
  if (configured.verdict === 'inconclusive') {
    const unproven = `the client credentials were NOT proven: ${configured.answer}.`
    hints.push(
      `${unproven} No answer said whether the identity provider accepts client ${config.oidc.clientId} with ${clientAuth}; the first sign-in will (a refusal is logged at error with what to check).`,
    )
    return { rows, hints, blocking: false, unproven }
  }
  if (configured.verdict === 'accepted') return { rows, hints, blocking: false }
  if (configured.failure?.answer === 'client_certificate_refused') {
    // Refused in the TLS handshake (RFC 8446 §6.2), before any method was
    // looked at: every other one would go through the same handshake.
    hints.push(
      `the identity provider refused the connection in the TLS handshake, before any client authentication: ${refusalHint(config.oidc, 'client_certificate_refused', undefined, configured.failure.tlsAlert)}`,
    )
    return { rows, hints, blocking: true }
  }

  const advertised = advertisedClientAuth(as).methods
  const others = usableMethods(config.oidc).filter((m) => m !== clientAuth && advertised.includes(m))
  let working: ClientAuthMethod | undefined
  const refused: ClientAuthMethod[] = [clientAuth]
  const unchecked: ClientAuthMethod[] = []
  for (const method of others) {
    const probe = await oidc.probeCredentials(method)
    rows.push(probeRow(method, probe, 'tried'))
    if (probe.verdict === 'accepted') working ??= method
    else (probe.verdict === 'refused' ? refused : unchecked).push(method)
  }
  if (working) {
    hints.push(`the identity provider accepts ${working}: set oidc.clientAuth: ${working}.`)
    const secret = config.oidc.clientSecret ?? ''
    if (
      clientAuth === 'client_secret_basic' &&
      !(FORM_SAFE.test(secret) && FORM_SAFE.test(config.oidc.clientId))
    ) {
      hints.push(
        'client_secret_basic is refused but the same secret is accepted otherwise: the identity provider compares Basic credentials without decoding them, and the id or secret has characters outside [A-Za-z0-9*-._], which must be escaped (RFC 6749 §2.3.1). Use client_secret_post, or a secret of those characters only.',
      )
    }
  } else {
    // With a secret, the secret is the likely culprit; with a certificate or
    // a key, what the runtime log's hint names for that method.
    const what =
      clientAuth === 'client_secret_basic' || clientAuth === 'client_secret_post'
        ? `check ${config.oidc.option}.clientId and ${config.oidc.option}.clientSecret, and the authentication methods the identity provider allows this client (or the key registered for private_key_jwt, and this host's clock).`
        : refusalHint(config.oidc, 'invalid_client')
    const where =
      configured.endpoint === 'revocation'
        ? ` (${clientAuth} at the revocation endpoint, as the token endpoint's answer said neither)`
        : ''
    hints.push(
      unchecked.length === 0
        ? `the identity provider refuses client ${config.oidc.clientId} with every method Gatehouse could use${others.length === 0 ? '' : ` (${refused.join(', ')})`}${where}: ${what}`
        : `the identity provider refuses client ${config.oidc.clientId} with ${refused.join(', ')}${where}; ${unchecked.join(', ')} could not be checked (see its row): ${what}`,
    )
  }
  // As configured, Gatehouse cannot log anyone in, whichever method would work.
  return { rows, hints, blocking: true }
}

function probeRow(method: ClientAuthMethod, probe: CredentialProbe, how: 'configured' | 'tried'): Row {
  return {
    capability: how === 'configured' ? 'client credentials (probe)' : `client credentials with ${method}`,
    need: method,
    advertised:
      probe.endpoint === 'revocation' && probe.verdict !== 'inconclusive'
        ? `${probe.verdict} at the revocation endpoint: ${probe.answer}`
        : `${probe.verdict}: ${probe.answer}`,
    verdict: probe.verdict === 'accepted' ? 'ok' : probe.verdict === 'refused' ? 'BLOCKING' : 'warn',
  }
}

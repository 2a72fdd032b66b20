import type * as oauth from 'oauth4webapi'
import type { GatehouseConfig } from '../config/types.js'
import { JWT_BEARER_GRANT, TOKEN_EXCHANGE_GRANT } from '../oidc/exchange.js'
import type { Verdict } from './online-report.js'

/**
 * The grants of `token: exchange` routes (RFC 8693, RFC 7523) against
 * `grant_types_supported` (RFC 8414 §2; absent, authorization_code and
 * implicit only). An IdP without the grant refuses every exchange, not
 * always as `unsupported_grant_type` (LemonLDAP::NG 2.16 answers `400
 * invalid_request`), so the route's 403 alone did not say why. A warning:
 * an IdP may support a grant it does not list.
 */
export function compareExchangeGrants(
  config: GatehouseConfig,
  as: Readonly<oauth.AuthorizationServer>,
  row: (capability: string, need: string, advertised: string, verdict: Verdict) => void,
  hints: string[],
): void {
  const grants = as.grant_types_supported ?? ['authorization_code', 'implicit']
  const needed = new Map<string, number[]>()
  config.routes.forEach((route, i) => {
    if (!route.exchange) return
    const grant = route.exchange.grant === 'jwt-bearer' ? JWT_BEARER_GRANT : TOKEN_EXCHANGE_GRANT
    needed.set(grant, [...(needed.get(grant) ?? []), i])
  })
  for (const [grant, routes] of needed) {
    const listed = grants.includes(grant)
    row('token exchange (routes)', grant, listed ? 'listed' : 'not listed', listed ? 'ok' : 'warn')
    if (listed) continue
    const which = routes.map((i) => `routes[${i}]`).join(', ')
    hints.push(
      `${which} (token: exchange) uses the grant ${grant}, which is not in grant_types_supported: the IdP may refuse every exchange, and the route answer 403 token_exchange_refused.`,
    )
  }
}

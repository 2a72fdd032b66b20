import { ACCESS_TOKEN_TYPE, type RawConfig } from './schema.js'
import { checkScopes } from './scope-token.js'
import type { ExchangeConfig } from './types.js'

type RawRoute = RawConfig['routes'][number]
type RawExchange = NonNullable<RawRoute['exchange']>
type Add = (path: (string | number)[], message: string) => void

/** An absolute URI (RFC 3986 §4.3): a scheme, then anything. */
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/

/**
 * The rules of `routes[i].exchange` the schema cannot say: it goes with
 * `token: exchange` and only with it, and each grant takes the parameters
 * its specification defines (RFC 8693 §2.1; RFC 7523 §2.1 as Entra ID's
 * on-behalf-of flow uses it).
 */
export function checkExchange(
  route: RawRoute,
  at: (...rest: (string | number)[]) => (string | number)[],
  add: Add,
): void {
  const exchange = route.exchange
  if (route.token !== 'exchange') {
    if (exchange !== undefined) add(at('exchange'), 'applies only to token: exchange routes')
    return
  }
  if (exchange === undefined) {
    add(at('exchange'), 'is required on a token: exchange route: say which token to ask for')
    return
  }
  // The exchanged token's own parameters live in `exchange`; at the route they would read as a refresh's.
  if (route.scopes.length > 0) add(at('scopes'), 'use exchange.scopes on a token: exchange route')
  checkScopes(exchange.scopes, at('exchange', 'scopes'), add)
  if (exchange.resource !== undefined) {
    if (!ABSOLUTE_URI.test(exchange.resource))
      add(at('exchange', 'resource'), 'must be an absolute URI such as https://orders.example')
    else if (exchange.resource.includes('#'))
      add(at('exchange', 'resource'), 'must not contain a fragment (RFC 8707 §2)')
  }
  if (exchange.requestedTokenType !== undefined && !ABSOLUTE_URI.test(exchange.requestedTokenType)) {
    add(
      at('exchange', 'requestedTokenType'),
      `must be a token type URI such as ${ACCESS_TOKEN_TYPE} (RFC 8693 §3)`,
    )
  }
  if (exchange.grant === 'jwt-bearer') {
    // RFC 7523 §2.1 has no audience or token type; Entra ID names the API in the scope.
    if (exchange.audience !== undefined)
      add(
        at('exchange', 'audience'),
        'applies only to grant: token-exchange; with jwt-bearer name the API in scopes (Entra ID: api://<app id>/.default)',
      )
    if (exchange.requestedTokenType !== undefined)
      add(at('exchange', 'requestedTokenType'), 'applies only to grant: token-exchange')
    if (exchange.scopes.length === 0)
      add(
        at('exchange', 'scopes'),
        'must name at least one scope with grant: jwt-bearer (Entra ID: api://<app id>/.default)',
      )
  }
}

/** `routes[i].exchange` as the gateway uses it: scopes sorted and each once, so equal asks share a token. */
export function resolveExchange(raw: RawExchange): ExchangeConfig {
  return {
    subjectToken: raw.subjectToken,
    ...(raw.audience === undefined ? {} : { audience: raw.audience }),
    ...(raw.resource === undefined ? {} : { resource: raw.resource }),
    scopes: [...new Set(raw.scopes)].sort(),
    ...(raw.grant === 'token-exchange'
      ? { requestedTokenType: raw.requestedTokenType ?? ACCESS_TOKEN_TYPE }
      : {}),
    grant: raw.grant,
  }
}

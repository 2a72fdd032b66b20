import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { CONFIG_ENV, configHead, configProblems } from '../helpers/config-problems.js'

/**
 * A scope is a `scope-token` (RFC 6749 §3.3): printable ASCII without
 * space, `"` or `\`. The gateway joins a route's scopes with spaces and
 * marks a DPoP-bound token's cache key with `"dpop"` (tokens/audience.ts),
 * so a bearer route's scope `a "dpop"` gave its key to a DPoP route with
 * scope `a`; and a scope with a space was sent to the IdP as two.
 */
const head = configHead().replace(
  '  clientSecret: ${OIDC_CLIENT_SECRET}\n',
  '  clientSecret: ${OIDC_CLIENT_SECRET}\n  scopes: [openid, "offline access"]\n',
)
const text = `${head}routes:
  - path: /api/orders
    upstream: http://orders:8080
    scopes: [orders.read, 'orders "dpop"']
  - path: /api/reports
    upstream: http://reports:8080
    token: exchange
    exchange:
      audience: reports
      scopes: ["reports\\\\read"]
`

t.test('a scope RFC 6749 would not take is refused at load, each with its line', async (t) => {
  t.same(configProblems(text, CONFIG_ENV), [
    '7 oidc.scopes[1]: "offline access" is not a scope: RFC 6749 §3.3 allows printable ASCII only, without spaces, " or \\ (list two scopes as two items)',
    '13 routes[0].scopes[1]: "orders \\"dpop\\"" is not a scope: RFC 6749 §3.3 allows printable ASCII only, without spaces, " or \\ (list two scopes as two items)',
    '19 routes[1].exchange.scopes[0]: "reports\\\\read" is not a scope: RFC 6749 §3.3 allows printable ASCII only, without spaces, " or \\ (list two scopes as two items)',
  ])
})

t.test('scopes with the punctuation IdPs use are taken', async (t) => {
  const good = `${configHead()}routes:
  - path: /api/orders
    upstream: http://orders:8080
    scopes: ['api://4f2c/.default', 'https://graph.example/User.Read', 'orders:read', 'a!#$%&()*+,-./;<=>?@[]^_{|}~']
`
  t.doesNotThrow(() => parseConfig(good, 'routes.yaml', CONFIG_ENV))
})

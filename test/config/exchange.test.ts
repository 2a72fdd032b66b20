import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { configHead, configProblems } from '../helpers/config-problems.js'

const env = { OIDC_CLIENT_SECRET: 'client-secret', SESSION_SECRET: 'x'.repeat(32) }

/** A valid file whose routes are `lines`; the first route is on line 10. */
const withRoutes = (lines: string) => `${configHead()}routes:
${lines}`

const problems = (text: string) => configProblems(text, env)

t.test('token: exchange resolves its exchange block with the defaults filled in', async (t) => {
  const config = parseConfig(
    withRoutes(`  - path: /ledger
    upstream: http://ledger:8080
    token: exchange
    exchange: { audience: ledger-api, scopes: [ledger.write, ledger.read, ledger.read] }
  - path: /graph
    upstream: http://graph:8080
    token: exchange
    exchange: { grant: jwt-bearer, subjectToken: access_token, scopes: ["https://graph.microsoft.com/.default"] }
`),
    'routes.yaml',
    env,
  )
  t.same(config.routes[0]!.exchange, {
    subjectToken: 'access_token',
    audience: 'ledger-api',
    scopes: ['ledger.read', 'ledger.write'],
    requestedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
    grant: 'token-exchange',
  })
  t.same(config.routes[1]!.exchange, {
    subjectToken: 'access_token',
    scopes: ['https://graph.microsoft.com/.default'],
    grant: 'jwt-bearer',
  })
  t.ok(Object.isFrozen(config.routes[0]!.exchange), 'frozen like the rest')
})

t.test('what the schema cannot say about exchange is refused with the line', async (t) => {
  t.same(
    problems(
      withRoutes(`  - { path: /a, upstream: http://a:1, token: exchange }
  - { path: /b, upstream: http://b:1, exchange: { audience: b } }
  - { path: /c, upstream: http://c:1, token: exchange, scopes: [c], exchange: { audience: c } }
  - { path: /d, upstream: http://d:1, token: exchange, exchange: { resource: d-api } }
  - { path: /e, upstream: http://e:1, token: exchange, exchange: { resource: "https://e.example/#x" } }
  - { path: /f, upstream: http://f:1, token: exchange, exchange: { requestedTokenType: jwt } }
  - { path: /g, upstream: http://g:1, token: exchange, exchange: { grant: jwt-bearer, audience: g, scopes: [g] } }
  - { path: /h, upstream: http://h:1, token: exchange, exchange: { grant: jwt-bearer } }
  - { path: /i, upstream: http://i:1, token: exchange, exchange: { grant: jwt-bearer, scopes: [i], requestedTokenType: "urn:x:y" } }
`),
    ),
    [
      '10 routes[0].exchange: is required on a token: exchange route: say which token to ask for',
      '11 routes[1].exchange: applies only to token: exchange routes',
      '12 routes[2].scopes: use exchange.scopes on a token: exchange route',
      '13 routes[3].exchange.resource: must be an absolute URI such as https://orders.example',
      '14 routes[4].exchange.resource: must not contain a fragment (RFC 8707 §2)',
      '15 routes[5].exchange.requestedTokenType: must be a token type URI such as urn:ietf:params:oauth:token-type:access_token (RFC 8693 §3)',
      '16 routes[6].exchange.audience: applies only to grant: token-exchange; with jwt-bearer name the API in scopes (Entra ID: api://<app id>/.default)',
      '17 routes[7].exchange.scopes: must name at least one scope with grant: jwt-bearer (Entra ID: api://<app id>/.default)',
      '18 routes[8].exchange.requestedTokenType: applies only to grant: token-exchange',
    ],
  )
  t.same(
    problems(
      withRoutes(
        '  - { path: /j, upstream: http://j:1, token: exchange, exchange: { grant: saml2-bearer } }\n',
      ),
    ),
    ['10 routes[0].exchange.grant: must be one of token-exchange, jwt-bearer (got "saml2-bearer")'],
    'an unknown grant is a schema error',
  )
})

t.test('a route-level resource stays a refresh-token route thing', async (t) => {
  t.same(
    problems(
      withRoutes(`  - { path: /a, upstream: http://a:1, token: exchange, resource: "https://a.example", exchange: { audience: a } }
`),
    ),
    ['10 routes[0].resource: applies only to token: user and optional-user routes'],
  )
})

/**
 * `check --online` said nothing of a `token: exchange` route whose grant
 * the IdP does not list in `grant_types_supported`: LemonLDAP::NG 2.16
 * has no token exchange and answers it `400 invalid_request`, so the
 * route's 403 naming `invalid_request` was the only sign. The documents
 * are data; lemonldap-check-online.test.ts runs the command against it.
 */
import type * as oauth from 'oauth4webapi'
import t from 'tap'
import { compare } from '../../src/cli/check-online.js'
import { route, testConfig } from '../helpers/gateway.js'

const ISSUER = 'https://idp.example'
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

const as = (grants: string[] | undefined): oauth.AuthorizationServer => ({
  issuer: ISSUER,
  authorization_endpoint: `${ISSUER}/auth`,
  token_endpoint: `${ISSUER}/token`,
  ...(grants ? { grant_types_supported: grants } : {}),
})

const config = testConfig({
  port: 3000,
  issuer: ISSUER,
  routes: [
    route('/api/orders', 'http://127.0.0.1:9'),
    route('/api/ledger', 'http://127.0.0.1:9', {
      token: 'exchange',
      exchange: { audience: 'ledger' },
    } as never),
    route('/api/graph', 'http://127.0.0.1:9', {
      token: 'exchange',
      exchange: { grant: 'jwt-bearer', scopes: ['api://graph/.default'] },
    } as never),
    route('/api/books', 'http://127.0.0.1:9', {
      token: 'exchange',
      exchange: { audience: 'books' },
    } as never),
  ],
})

const rows = (report: ReturnType<typeof compare>) =>
  report.rows.filter((r) => r.capability === 'token exchange (routes)').map((r) => [r.need, r.verdict])

t.test('a grant the IdP does not list: a warn row, and a hint naming its routes', async (t) => {
  const report = compare(config, as(['authorization_code', 'refresh_token']))
  t.same(rows(report), [
    [TOKEN_EXCHANGE, 'warn'],
    [JWT_BEARER, 'warn'],
  ])
  t.ok(
    report.hints.some((h) =>
      h.startsWith(`routes[1], routes[3] (token: exchange) uses the grant ${TOKEN_EXCHANGE}`),
    ),
    'the token-exchange routes named together',
    { hints: report.hints },
  )
  t.ok(report.hints.some((h) => h.startsWith(`routes[2] (token: exchange) uses the grant ${JWT_BEARER}`)))
  t.equal(report.blocking, false, 'not blocking: an IdP may support a grant it does not list')
})

t.test('listed grants: ok rows and no hint; absent grant_types_supported lists neither', async (t) => {
  const listed = compare(config, as(['authorization_code', TOKEN_EXCHANGE, JWT_BEARER]))
  t.same(rows(listed), [
    [TOKEN_EXCHANGE, 'ok'],
    [JWT_BEARER, 'ok'],
  ])
  t.notOk(listed.hints.some((h) => h.includes('(token: exchange)')))
  // RFC 8414 §2: absent means authorization_code and implicit only.
  t.same(rows(compare(config, as(undefined))), [
    [TOKEN_EXCHANGE, 'warn'],
    [JWT_BEARER, 'warn'],
  ])
})

t.test('no exchange route: no row', async (t) => {
  const plain = testConfig({
    port: 3000,
    issuer: ISSUER,
    routes: [route('/api/orders', 'http://127.0.0.1:9')],
  })
  t.same(rows(compare(plain, as(['authorization_code']))), [])
})

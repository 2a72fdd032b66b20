import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { configProblems } from '../helpers/config-problems.js'

const env = { SESSION_SECRET: 'x'.repeat(32), CORP_SECRET: 'corp-secret', PARTNER_SECRET: 'partner-secret' }

const TWO = `server:
  publicUrl: https://app.example.com
identityProviders:
  - name: corp
    issuer: https://corp.example.com
    clientId: bff
    clientSecret: \${CORP_SECRET}
    dpop: true
  - name: partner
    issuer: https://partner.example.com
    clientId: bff-partner
    clientSecret: \${PARTNER_SECRET}
    scopes: [openid, offline_access]
session:
  secret: \${SESSION_SECRET}
routes:
  - path: /api/staff
    upstream: http://staff:8080
    identityProviders: [corp]
  - path: /api/partners
    upstream: http://partners:8080
    identityProviders: [partner]
  - path: /api/all
    upstream: http://all:8080
`

const problems = (text: string) => configProblems(text, env)

t.test('identityProviders: each provider resolved with every oidc option; the first is oidc', async (t) => {
  const config = parseConfig(TWO, 'routes.yaml', env)
  t.same(
    config.identityProviders.map((p) => [p.name, p.issuer, p.clientId, p.clientSecret]),
    [
      ['corp', 'https://corp.example.com', 'bff', 'corp-secret'],
      ['partner', 'https://partner.example.com', 'bff-partner', 'partner-secret'],
    ],
  )
  t.equal(config.oidc, config.identityProviders[0], 'oidc is the first provider, the default of /auth/login')
  t.same(config.identityProviders[1]!.scopes, ['openid', 'offline_access'])
  t.equal(config.identityProviders[1]!.timeout, 10_000, 'defaults filled per provider')
  t.equal(config.identityProviders[1]!.par, 'auto')
  t.same(config.routes[0]!.identityProviders, ['corp'])
  t.equal(config.routes[2]!.identityProviders, undefined, 'no list: every provider')
  t.equal(config.routes[0]!.dpop, true, "a route of corp's sessions is bound: corp binds its tokens")
  t.equal(
    config.routes[1]!.dpop,
    true,
    "partner's route too: a partner session has a key only if partner had dpop at its sign-in",
  )
  t.equal(config.routes[2]!.dpop, true, 'a route of both sends a proof when the session has a key')
  t.ok(Object.isFrozen(config.identityProviders[1]))
})

t.test('oidc: stays the one-provider shorthand, named default', async (t) => {
  const config = parseConfig(
    `server:
  publicUrl: https://app.example.com
oidc:
  issuer: https://idp.example.com
  clientId: my-bff
  clientSecret: s3cret
session:
  secret: \${SESSION_SECRET}
routes: []
`,
    'routes.yaml',
    env,
  )
  t.equal(config.identityProviders.length, 1)
  t.equal(config.oidc.name, 'default')
  t.equal(config.identityProviders[0], config.oidc)
  t.equal(config.oidc.issuer, 'https://idp.example.com')
})

t.test('a duplicate name is reported with its line', async (t) => {
  t.same(problems(TWO.replace('- name: partner', '- name: corp')), [
    '9 identityProviders[1].name: duplicates identityProviders[0].name (corp): names must be unique',
    '22 routes[1].identityProviders[0]: names no provider of identityProviders (corp)',
  ])
})

t.test('a route naming no provider, both blocks, or neither are reported', async (t) => {
  t.same(problems(TWO.replace('identityProviders: [partner]', 'identityProviders: [partnr]')), [
    '22 routes[1].identityProviders[0]: names no provider of identityProviders (corp, partner)',
  ])
  const both = TWO.replace(
    'session:\n',
    'oidc:\n  issuer: https://idp.example.com\n  clientId: x\n  clientSecret: y\nsession:\n',
  )
  t.same(problems(both), [
    '3 identityProviders: set either oidc (one provider) or identityProviders, not both',
  ])
  t.same(
    problems(
      'server:\n  publicUrl: https://app.example.com\nsession:\n  secret: ${SESSION_SECRET}\nroutes: []\n',
    ),
    ['1 oidc: is required (or identityProviders: a list of named providers)'],
  )
})

t.test("each provider's options are checked where they are written", async (t) => {
  t.same(problems(TWO.replace('    clientSecret: ${PARTNER_SECRET}\n', '')), [
    '9 identityProviders[1].clientSecret: is required when clientAuth is client_secret_basic',
  ])
  t.same(problems(TWO.replace('https://partner.example.com', 'http://partner.example.com')), [
    '10 identityProviders[1].issuer: must use https; plain http is allowed only for loopback hosts (localhost, 127.0.0.0/8, [::1])',
  ])
  t.match(problems(TWO.replace('- name: partner', '- name: Partner One')), [
    "9 identityProviders[1].name: expected string to match '^[a-z0-9][a-z0-9_-]*$'",
  ])
  t.same(
    problems(
      TWO.replace('    identityProviders: [partner]\n', '    identityProviders: [partner]\n    dpop: true\n'),
    ),
    ['23 routes[1].dpop: needs a provider of the route with dpop: true'],
  )
})

t.test("a token: client route's binding is that of the provider its token comes from", async (t) => {
  // corp binds its tokens, partner does not; the gateway's token comes from one of them only.
  const client = (extra: string) =>
    TWO.replace(
      '  - path: /api/all\n',
      `  - path: /api/reports\n    upstream: http://reports:8080\n    token: client\n${extra}  - path: /api/all\n`,
    )
  t.same(
    problems(client('    identityProviders: [partner, corp]\n    dpop: true\n')),
    [
      "27 routes[2].dpop: needs identityProviders[1].dpop: true: a token: client route's token comes from partner, the first provider the route lists",
    ],
    "refused: its upstream would get a plain Bearer token of partner's, though corp binds",
  )
  // The other way round: partner binds, corp, the first, does not.
  const partnerBinds = (extra: string) =>
    client(extra)
      .replace('    dpop: true\n  - name: partner', '  - name: partner')
      .replace(
        '    scopes: [openid, offline_access]\n',
        '    scopes: [openid, offline_access]\n    dpop: true\n',
      )
  t.same(
    problems(partnerBinds('    dpop: true\n')),
    [
      "26 routes[2].dpop: needs identityProviders[0].dpop: true: a token: client route's token comes from corp, the first provider",
    ],
    'without a list, from the first provider of all',
  )
  const resolved = (text: string) => parseConfig(text, 'routes.yaml', env).routes[2]!
  t.equal(
    resolved(client('    identityProviders: [partner, corp]\n')).dpop,
    false,
    "by default unbound: partner's token is not bound, whatever corp does",
  )
  const bound = resolved(client('    identityProviders: [corp, partner]\n    dpop: true\n'))
  t.same([bound.clientIdentityProvider, bound.dpop], ['corp', true], "corp's token is bound")
})

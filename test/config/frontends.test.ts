import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { configProblems } from '../helpers/config-problems.js'

const SECRET = 'x'.repeat(32)
const env = { SESSION_SECRET: SECRET }

const head = `server: { port: 3000 }
oidc:
  issuer: https://idp.example.com
  clientId: bff
  clientSecret: s
session:
  secret: \${SESSION_SECRET}
`

const problems = (text: string) => configProblems(text, env)

t.test('without frontends, the instance is one frontend made of the top-level options', async (t) => {
  const config = parseConfig(
    `${head.replace('port: 3000', 'publicUrl: https://app.example.com')}routes:
  - { path: /api, upstream: http://api:8080 }
`,
    'routes.yaml',
    env,
  )
  t.equal(config.frontends.length, 1)
  t.match(config.frontends[0], {
    name: '',
    host: undefined,
    pathPrefix: '',
    publicUrl: 'https://app.example.com',
    secure: true,
    cookieName: '__Host-Http-gatehouse',
    auth: { basePath: '/auth' },
    home: '/',
    identityProviders: undefined,
  })
  t.same(config.frontends[0]!.routes, config.routes, 'the same routes')
  t.equal(config.session.cookieName, '__Host-Http-gatehouse')
})

t.test('named frontends: defaults per frontend, routes listed per frontend and over all', async (t) => {
  const config = parseConfig(
    `${head}frontends:
  - name: staff
    host: Staff.Example.com
    publicUrl: https://staff.example.com
    routes:
      - { path: /api, upstream: http://staff-api:8080 }
  - name: portal
    host: app.example.com
    pathPrefix: /portal/
    publicUrl: https://app.example.com
    cookieName: portal-sid
    identityProviders: [default]
    routes:
      - { path: /portal/api, upstream: http://portal-api:8080 }
  - name: local
    pathPrefix: /local
    publicUrl: http://localhost:3000
    auth: { basePath: /local/signin }
`,
    'routes.yaml',
    env,
  )
  t.equal(
    config.server.publicUrl,
    'https://staff.example.com',
    "server.publicUrl defaults to the first frontend's",
  )
  const [staff, portal, local] = config.frontends
  t.match(staff, {
    name: 'staff',
    host: 'staff.example.com',
    pathPrefix: '',
    cookieName: '__Host-Http-gatehouse-staff',
    auth: { basePath: '/auth' },
    home: '/',
  })
  t.match(portal, {
    name: 'portal',
    host: 'app.example.com',
    pathPrefix: '/portal',
    cookieName: '__Host-Http-portal-sid',
    auth: { basePath: '/portal/auth' },
    home: '/portal/',
    identityProviders: ['default'],
  })
  t.match(local, { secure: false, cookieName: 'gatehouse-local', auth: { basePath: '/local/signin' } })
  t.same(
    config.routes.map((r) => r.path),
    ['/api', '/portal/api'],
  )
  t.ok(Object.isFrozen(config.frontends[1]!.routes[0]), 'frozen as the rest')
})

t.test('what check reports of frontends, each with its line', async (t) => {
  const found = problems(`${head}routes:
  - { path: /api, upstream: http://api:8080 }
frontends:
  - name: staff
    host: staff.example.com
    publicUrl: https://other.example.com
    routes:
      - { path: /auth/x, upstream: http://a:1 }
  - name: staff
    host: staff.example.com
    publicUrl: https://staff.example.com
  - name: loose
    publicUrl: https://loose.example.com
  - name: portal
    host: app.example.com
    pathPrefix: /portal
    publicUrl: https://app.example.com
    cookieName: gatehouse-shop
    auth: { basePath: /auth }
    identityProviders: [corp]
    routes:
      - { path: /api, upstream: http://a:1 }
      - { path: /portal/shop/x, upstream: http://a:1 }
  - name: shop
    host: app.example.com
    pathPrefix: /portal/shop
    publicUrl: http://app.example.com
  - name: Bad_Name
    pathPrefix: portal
    publicUrl: https://x.example.com
`)
  t.same(found, [
    '8 routes: with frontends, each frontend lists its own routes: move these under one of them',
    '13 frontends[0].publicUrl: is on other.example.com, but this frontend serves host staff.example.com',
    '15 frontends[0].routes[0].path: overlaps frontends[0].auth.basePath (/auth)',
    '16 frontends[1].name: duplicates frontends[0].name (staff)',
    '16 frontends[1]: matches the same requests as frontends[0] (host staff.example.com, pathPrefix none)',
    '19 frontends[2]: needs host, pathPrefix or both: they say which requests this frontend serves',
    '26 frontends[3].auth.basePath: sign-in path /auth lies outside this frontend (host app.example.com, pathPrefix /portal)',
    '27 frontends[3].identityProviders[0]: names no identity provider (known: default)',
    '29 frontends[3].routes[0].path: lies outside this frontend (host app.example.com, pathPrefix /portal)',
    '30 frontends[3].routes[1].path: is served by frontends[4] (shop) at https://app.example.com, not this frontend',
    "31 frontends[4].name: gives the session cookie the default name gatehouse-shop (session.cookieName-name), which is also frontends[3]'s session or login cookie name: set frontends[4].cookieName",
    '34 frontends[4].publicUrl: must use https, so cookies are Secure; plain http is allowed only for loopback hosts (localhost, 127.0.0.0/8, [::1])',
    "35 frontends[5].name: expected string to match '^[a-z0-9][a-z0-9-]{0,31}$'",
    '36 frontends[5].pathPrefix: must be a path prefix such as /partners, without .., query or spaces',
  ])
})

t.test(
  'a cookie name clash points at the cookieName that sets it, or at the name that made a default one',
  async (t) => {
    const found = problems(`${head}frontends:
  - name: shop
    pathPrefix: /shop
    publicUrl: https://app.example.com
    cookieName: gatehouse-admin
  - name: admin
    pathPrefix: /admin
    publicUrl: https://app.example.com
  - name: staff
    pathPrefix: /staff
    publicUrl: https://app.example.com
    cookieName: gatehouse-admin
`)
    t.same(found, [
      "13 frontends[1].name: gives the session cookie the default name gatehouse-admin (session.cookieName-name), which is also frontends[0]'s session or login cookie name: set frontends[1].cookieName",
      "19 frontends[2].cookieName: gatehouse-admin is also frontends[1]'s session or login cookie name",
    ])
  },
)

t.test("a frontend's route serves only providers the frontend signs in with", async (t) => {
  const found = problems(`server: { port: 3000 }
identityProviders:
  - { name: corp, issuer: https://corp.example.com, clientId: bff, clientSecret: s }
  - { name: partner, issuer: https://partner.example.com, clientId: bff, clientSecret: s }
session:
  secret: \${SESSION_SECRET}
frontends:
  - name: staff
    host: staff.example.com
    publicUrl: https://staff.example.com
    identityProviders: [corp]
    routes:
      - { path: /api, upstream: http://a:1, identityProviders: [corp, partner] }
`)
  t.same(found, [
    "13 frontends[0].routes[0].identityProviders[1]: partner is not one of this frontend's identityProviders (corp)",
  ])
})

t.test('a provider no frontend signs in with loads, with a warning naming it and its line', async (t) => {
  const text = (staff: string, partners: string) => `server: { port: 3000 }
identityProviders:
  - { name: corp, issuer: https://corp.example.com, clientId: bff, clientSecret: s }
  - name: partner
    issuer: https://partner.example.com
    clientId: bff
    clientSecret: s
session:
  secret: \${SESSION_SECRET}
frontends:
  - name: staff
    host: staff.example.com
    publicUrl: https://staff.example.com
    ${staff}
  - name: partners
    host: partners.example.com
    publicUrl: https://partners.example.com
    ${partners}
`
  const warned = (staff: string, partners: string) => {
    const warnings: string[] = []
    parseConfig(text(staff, partners), 'routes.yaml', env, {
      onWarning: (w) => warnings.push(`${w.line} ${w.path}: ${w.message}`),
    })
    return warnings
  }
  t.same(warned('identityProviders: [corp]', 'identityProviders: [corp]'), [
    "4 identityProviders[1].name: partner is in no frontend's identityProviders: no one signs in with it and no route gets its tokens; list it at a frontend, or remove it",
  ])
  t.same(warned('identityProviders: [corp]', 'identityProviders: [partner]'), [], 'each is used')
  t.same(
    warned('identityProviders: [corp]', 'routes: []'),
    [],
    'a frontend that lists none signs in with all',
  )
})

t.test('a dpop route needs a provider with DPoP among those its frontend signs in with', async (t) => {
  const text = (staff: string, route: string) => `server: { port: 3000 }
identityProviders:
  - { name: corp, issuer: https://corp.example.com, clientId: bff, clientSecret: s }
  - { name: partner, issuer: https://partner.example.com, clientId: bff, clientSecret: s, dpop: true }
session:
  secret: \${SESSION_SECRET}
frontends:
  - name: staff
    host: staff.example.com
    publicUrl: https://staff.example.com
    ${staff}
    routes:
      - ${route}
  - name: partners
    host: partners.example.com
    publicUrl: https://partners.example.com
    identityProviders: [partner]
`
  const user = '{ path: /api, upstream: http://a:1, dpop: true }'
  const client = '{ path: /api, upstream: http://a:1, token: client, dpop: true }'
  const refused = (line: number) =>
    `${line} frontends[0].routes[0].dpop: needs a provider with dpop: true among those its frontend signs in with (frontends[0].identityProviders: corp)`
  // Its upstream would get a plain Bearer token, with no proof, from a provider without DPoP.
  t.same(problems(text('identityProviders: [corp]', user)), [refused(13)], "a session's token")
  const clientRefused =
    "13 frontends[0].routes[0].dpop: needs identityProviders[0].dpop: true: a token: client route's token comes from corp, the first provider its frontend signs in with (frontends[0].identityProviders)"
  t.same(problems(text('identityProviders: [corp]', client)), [clientRefused], "the gateway's own")
  // The gateway's token comes from corp alone: partner's DPoP binds none of it.
  t.same(
    problems(text('identityProviders: [corp, partner]', client)),
    [clientRefused],
    "the gateway's own, though another provider of the frontend binds its sessions' tokens",
  )
  const loads = (config: string, why: string) =>
    t.doesNotThrow(() => parseConfig(config, 'routes.yaml', env), why)
  loads(text('identityProviders: [corp, partner]', user), 'one of its providers binds')
  loads(
    text('identityProviders: [partner, corp]', client),
    "the gateway's token comes from partner, which binds",
  )
  loads(text('cookieName: staff', user), 'a frontend that lists none signs in with all')
  const config = parseConfig(
    text('identityProviders: [corp]', client.replace(', dpop: true', '')),
    'routes.yaml',
    env,
  )
  t.equal(config.frontends[0]!.routes[0]!.dpop, false, "by default, a client token of corp's is not bound")
  const both = parseConfig(
    text('identityProviders: [corp, partner]', client.replace(', dpop: true', '')),
    'routes.yaml',
    env,
  )
  t.equal(both.frontends[0]!.routes[0]!.dpop, false, 'nor when another provider of the frontend binds')
})

t.test('server.publicUrl is required only without frontends', async (t) => {
  t.same(problems(`${head}routes: []\n`), ['1 server.publicUrl: is required'])
})

t.test('a frontend that matches every request is not told its own paths lie outside it', async (t) => {
  const found = problems(`${head}frontends:
  - name: partners
    host: app.example.com
    pathPrefix: /partners
    publicUrl: https://app.example.com
  - name: everyone
    pathPrefix: /
    publicUrl: https://app.example.com
    routes:
      - { path: /api, upstream: http://a:1 }
`)
  t.same(
    found.filter((p) => /lies outside/.test(p)),
    [],
    'no finding with an empty pathPrefix in it',
  )
})

t.test(
  "a route passes its upstream's Strict-Transport-Security only when it says so, under frontends too",
  async (t) => {
    const config = parseConfig(
      `${head}frontends:
  - name: staff
    host: staff.example.com
    publicUrl: https://staff.example.com
    routes:
      - { path: /api, upstream: http://staff-api:8080 }
      - { path: /site, upstream: http://site:8080, allowStrictTransportSecurity: true }
`,
      'routes.yaml',
      env,
    )
    t.same(
      config.frontends[0]!.routes.map((r) => r.allowStrictTransportSecurity),
      [false, true],
      'dropped by default',
    )
    t.same(
      problems(`${head.replace('port: 3000', 'publicUrl: https://app.example.com')}routes:
  - { path: /api, upstream: http://api:8080, allowStrictTransportSecurity: 'yes' }
`),
      ['9 routes[0].allowStrictTransportSecurity: expected boolean'],
    )
  },
)

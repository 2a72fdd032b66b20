import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { makePki } from '../helpers/certificates.js'
import { configProblems } from '../helpers/config-problems.js'

const env = { SESSION_SECRET: 'x'.repeat(32) }
const jwk = (key: ReturnType<typeof generateKeyPairSync>['privateKey']) =>
  JSON.stringify(key.export({ format: 'jwk' }))

const problems = (text: string) => configProblems(text, env)

const file = (
  oidc: string,
  upstream = 'https://orders:8443',
) => `server: { publicUrl: https://app.example.com }
oidc:
  issuer: https://idp.example.com
  clientId: my-bff
  profile: fapi2
${oidc}
session: { secret: "\${SESSION_SECRET}" }
routes:
  - { path: /api, upstream: "${upstream}" }
`

t.test('check enforces the profile on the configuration, naming each option', async (t) => {
  t.same(
    problems(file('  clientSecret: s\n  par: "off"')),
    [
      '5 oidc.profile: profile fapi2 requires sender-constrained access tokens: set oidc.dpop: true, or oidc.tls with a client certificate the IdP binds tokens to (RFC 8705 §3)',
      '6 oidc.clientSecret: profile fapi2 allows no client secret; remove it',
      '7 oidc.par: profile fapi2 requires pushed authorization requests; remove par: off',
      '2 oidc.clientAuth: profile fapi2 allows private_key_jwt, tls_client_auth or self_signed_tls_client_auth only (got client_secret_basic)',
    ].sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10)),
  )
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey
  const withKey = `  dpop: true\n  clientAuth: private_key_jwt\n  clientKey: { jwk: '${jwk(p384)}' }`
  t.same(problems(file(withKey)), [
    '8 oidc.clientKey: profile fapi2 allows PS256, ES256 or EdDSA keys only; this key would sign ES384',
  ])
  t.same(problems(file(withKey, 'http://orders:8080')), [
    '11 routes[0].upstream: profile fapi2 sends tokens over TLS only: use https (plain http only for loopback hosts)',
  ])
})

t.test(
  'a route with dpop: false would get a bearer token: refused unless mTLS binds the tokens',
  async (t) => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
    const dpopOnly = `  dpop: true\n  clientAuth: private_key_jwt\n  clientKey: { jwk: '${jwk(ec)}' }`
    const withRoutes = (oidc: string) =>
      file(oidc).replace(
        '  - { path: /api, upstream: "https://orders:8443" }\n',
        `  - { path: /api, upstream: "https://orders:8443" }
  - { path: /legacy, upstream: "https://legacy:8443", dpop: false }
  - { path: /reports, upstream: "https://reports:8443", dpop: false, resource: "https://reports" }
  - { path: /public, upstream: "https://public:8443", dpop: false, token: none }
`,
      )
    t.same(problems(withRoutes(dpopOnly)), [
      '12 routes[1].dpop: profile fapi2 requires sender-constrained access tokens: with dpop: false this route is sent its token without a proof; remove it, or bind the tokens by mutual TLS (oidc.tls)',
      '13 routes[2].dpop: profile fapi2 requires sender-constrained access tokens: with dpop: false this route is sent its token without a proof; remove it, or bind the tokens by mutual TLS (oidc.tls)',
    ])
  },
)

t.test(
  'mTLS-bound tokens: every https route must be sent the same client certificate (RFC 8705 §3)',
  async (t) => {
    const pki = makePki(t)
    const client = pki.issue('gatehouse-client')
    const other = pki.issue('other-client')
    const tls = (c: { certFile: string; keyFile: string }) =>
      `tls: { cert: { file: "${c.certFile}" }, key: { file: "${c.keyFile}" } }`
    const mtlsOnly = `  clientAuth: tls_client_auth\n  ${tls(client)}`
    const withRoutes = file(mtlsOnly).replace(
      '  - { path: /api, upstream: "https://orders:8443" }\n',
      `  - { path: /api, upstream: "https://orders:8443", ${tls(client)} }
  - { path: /none, upstream: "https://orders:8443" }
  - { path: /other, upstream: "https://ledger:8443", ${tls(other)} }
  - { path: /copy, upstream: "https://copy:8443", tls: { cert: { pem: ${JSON.stringify(client.cert)} }, key: { file: "${client.keyFile}" } } }
  - { path: /local, upstream: "http://127.0.0.1:9000" }
  - { path: /public, upstream: "https://public:8443", token: none }
`,
    )
    t.same(problems(withRoutes), [
      '11 routes[1].tls.cert: profile fapi2 with mTLS-bound tokens (RFC 8705 §3): this route is sent a token bound to the certificate of oidc.tls.cert, which only that certificate can use; give the route tls: { cert, key } with the same certificate',
      '12 routes[2].tls.cert: profile fapi2 with mTLS-bound tokens (RFC 8705 §3): this route is sent a token bound to the certificate of oidc.tls.cert, which only that certificate can use; give the route tls: { cert, key } with the same certificate',
    ])
    const withDpop = withRoutes.replace(
      '  clientAuth: tls_client_auth\n',
      '  clientAuth: tls_client_auth\n  dpop: true\n',
    )
    // With DPoP as well, only a route that goes without the proof needs the certificate.
    const noProof = withDpop.replace(
      '  - { path: /public, upstream: "https://public:8443", token: none }\n',
      `  - { path: /public, upstream: "https://public:8443", token: none }
  - { path: /legacy, upstream: "https://legacy:8443", dpop: false }
  - { path: /reports, upstream: "https://reports:8443", dpop: false, resource: "https://reports", ${tls(client)} }
`,
    )
    t.same(problems(noProof), [
      '17 routes[6].tls.cert: profile fapi2 with mTLS-bound tokens (RFC 8705 §3): this route is sent a token bound to the certificate of oidc.tls.cert, which only that certificate can use; give the route tls: { cert, key } with the same certificate',
    ])
    t.doesNotThrow(
      () => parseConfig(withDpop, 'routes.yaml', env),
      'with DPoP as well, a route may go without the certificate',
    )
  },
)

t.test(
  "the route rules of fapi2 hold only where its provider's tokens go: its sessions, its frontends, its client token",
  async (t) => {
    const pki = makePki(t)
    const client = pki.issue('gatehouse-client')
    const text = `server: { publicUrl: https://app.example.com }
identityProviders:
  - { name: corp, issuer: https://corp.example.com, clientId: a, clientSecret: s }
  - name: bank
    issuer: https://bank.example.com
    clientId: b
    profile: fapi2
    clientAuth: tls_client_auth
    tls: { cert: { file: "${client.certFile}" }, key: { file: "${client.keyFile}" } }
session: { secret: "\${SESSION_SECRET}" }
frontends:
  - name: main
    host: app.example.com
    publicUrl: https://app.example.com
    routes:
      - { path: /reports, upstream: "https://reports:8443", token: client }
      - { path: /mixed, upstream: "https://mixed:8443", token: client, identityProviders: [corp, bank] }
      - { path: /bank, upstream: "https://bank-api:8443" }
  - name: corp-only
    host: corp.example.com
    publicUrl: https://corp.example.com
    identityProviders: [corp]
    routes:
      - { path: /api, upstream: "https://orders:8443" }
  - name: bank-only
    host: bank.example.com
    publicUrl: https://bank.example.com
    identityProviders: [bank]
    routes:
      - { path: /reports, upstream: "https://bank-reports:8443", token: client }
`
    t.same(
      problems(text),
      [
        '18 frontends[0].routes[2].tls.cert: profile fapi2 with mTLS-bound tokens (RFC 8705 §3): this route is sent a token bound to the certificate of identityProviders[1].tls.cert, which only that certificate can use; give the route tls: { cert, key } with the same certificate',
        '30 frontends[2].routes[0].tls.cert: profile fapi2 with mTLS-bound tokens (RFC 8705 §3): this route is sent a token bound to the certificate of identityProviders[1].tls.cert, which only that certificate can use; give the route tls: { cert, key } with the same certificate',
      ],
      "only the routes bank's tokens reach: its sessions', and the client token of a frontend that signs in with bank alone; the other client tokens are corp's, and corp-only signs in with corp alone",
    )
  },
)

t.test('what the profile turns on: PAR required; an RSA key signs PS256', async (t) => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
  const config = parseConfig(
    file(
      `  dpop: true\n  clientAuth: private_key_jwt\n  clientKey: { jwk: '${jwk(rsa)}' }`,
      'http://127.0.0.1:8080',
    ),
    'routes.yaml',
    env,
  )
  t.equal(config.oidc.par, 'required')
  t.equal(config.oidc.profile, 'fapi2')
  t.equal(config.oidc.clientKey?.jwk.alg, 'PS256', 'FAPI 2.0 §5.4.1: PS256, never RS256')
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey
  t.match(
    problems(file(`  dpop: true\n  clientAuth: private_key_jwt\n  clientKey: { jwk: '${jwk(small)}' }`)),
    [/oidc\.clientKey: profile fapi2 needs an RSA key of at least 2048 bits \(got 1024\)/],
  )
})

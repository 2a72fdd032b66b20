import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { redirectUris } from '../../src/config/redirect-uris.js'

const secrets = { S: 'x'.repeat(32) }
const base = `session: { secret: "\${S}" }\nroutes: []\n`

t.test('oidc: one provider, one address', async (t) => {
  const config = parseConfig(
    `server: { publicUrl: https://app.example.com }\noidc: { issuer: https://idp.example.com, clientId: g, clientSecret: s }\n${base}`,
    'routes.yaml',
    secrets,
  )
  t.same(redirectUris(config), { default: ['https://app.example.com/auth/callback'] })
})

t.test('identityProviders: each its own, at each frontend it signs in at', async (t) => {
  const config = parseConfig(
    `server: { publicUrl: https://app.example.com }
identityProviders:
  - { name: corp, issuer: https://corp.example.com, clientId: g, clientSecret: s }
  - { name: partner, issuer: https://partner.example.com, clientId: g, clientSecret: s }
auth: { basePath: /bff }
session: { secret: "\${S}" }
routes: []
frontends:
  - { name: staff, host: staff.example.com, publicUrl: https://staff.example.com, identityProviders: [corp], routes: [] }
  - { name: all, host: all.example.com, publicUrl: https://all.example.com, routes: [] }
`,
    'routes.yaml',
    secrets,
  )
  t.same(redirectUris(config), {
    corp: ['https://staff.example.com/bff/callback/corp', 'https://all.example.com/bff/callback/corp'],
    partner: ['https://all.example.com/bff/callback/partner'],
  })
})

import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { routesOfProvider } from '../../src/config/provider-routes.js'

const text = `server: { port: 3000 }
identityProviders:
  - { name: corp, issuer: https://corp.example, clientId: bff, clientSecret: s }
  - { name: partner, issuer: https://partner.example, clientId: bff, clientSecret: s }
session: { secret: ${'x'.repeat(32)} }
frontends:
  - name: staff
    host: staff.example.com
    publicUrl: https://staff.example.com
    identityProviders: [corp]
    routes: [{ path: /api, upstream: http://staff:8080 }]
  - name: partners
    host: partners.example.com
    publicUrl: https://partners.example.com
    identityProviders: [partner]
    routes: [{ path: /api, upstream: http://partners:8080 }]
  - name: shared
    host: shared.example.com
    publicUrl: https://shared.example.com
    routes:
      - { path: /any, upstream: http://any:8080 }
      - { path: /corp, upstream: http://corp:8080, identityProviders: [corp] }
`

t.test("a provider's routes are those of the frontends that sign in with it, but others' own", async (t) => {
  const config = parseConfig(text, 'routes.yaml', {})
  const upstreams = (idp: string) => routesOfProvider(config.frontends, idp).map((r) => r.upstream)
  t.same(upstreams('corp'), ['http://staff:8080', 'http://any:8080', 'http://corp:8080'])
  t.same(upstreams('partner'), ['http://partners:8080', 'http://any:8080'])
  t.same(upstreams('gone'), ['http://any:8080'], 'a frontend that lists none serves every provider')
})

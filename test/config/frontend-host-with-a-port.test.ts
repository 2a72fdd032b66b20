import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { configProblems } from '../helpers/config-problems.js'

/*
 * `host: app.example.com:8443` on a frontend gave the schema's raw pattern
 * (expected string to match '^[A-Za-z0-9.-]+$') and three follow-on problems
 * about a publicUrl, a cookie and routes that were right as written: four
 * lines, none saying that a host is matched whatever the port.
 */
const env = { SESSION_SECRET: 'x'.repeat(32) }
const config = (host: string, publicUrl: string) => `server: { port: 3000 }
oidc:
  issuer: https://idp.example.com
  clientId: bff
  clientSecret: s
session:
  secret: \${SESSION_SECRET}
frontends:
  - name: app
    host: ${host}
    publicUrl: ${publicUrl}
    routes:
      - { path: /api, upstream: http://api:8080 }
`

t.test('a frontend host with a port is one problem at its line that says to drop the port', async (t) => {
  t.same(configProblems(config('app.example.com:8443', 'https://app.example.com:8443'), env), [
    '10 frontends[0].host: app.example.com:8443 has a port: a host is matched whatever the port, so write app.example.com (the port the browser uses goes in publicUrl: https://app.example.com:8443)',
  ])
})

t.test('another malformed host says what a host is, not the pattern', async (t) => {
  const found = configProblems(config('https://app.example.com', 'https://app.example.com'), env)
  t.ok(
    found.includes(
      '10 frontends[0].host: must be a host name such as staff.example.com: letters, digits, . and -, without a scheme, port or path',
    ),
    found.join('\n'),
  )
})

t.test('the host without the port, and the port in publicUrl, is accepted', async (t) => {
  const loaded = parseConfig(config('app.example.com', 'https://app.example.com:8443'), 'routes.yaml', env)
  t.equal(loaded.frontends[0]!.host, 'app.example.com')
})

import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { problemsOrNone } from '../helpers/config-problems.js'

/*
 * `server.host` and `metrics.host` took any text: `[::1]` (an IPv6 address
 * written as in a URL), `0.0.0.0:3000`, `http://0.0.0.0` or a stray space
 * passed `gatehouse check`, and the start then failed with "getaddrinfo
 * ENOTFOUND [::1]", naming neither the option nor the line. Each is now
 * refused at its line with what to write instead.
 */
const env = { SESSION_SECRET: 's'.repeat(32) }
const withHosts = (
  server: string,
  metrics = '127.0.0.1',
) => `server: { publicUrl: https://app.example.com, host: ${JSON.stringify(server)} }
oidc: { issuer: https://idp.example.com, clientId: a, clientSecret: s }
session: { secret: "\${SESSION_SECRET}" }
metrics: { host: ${JSON.stringify(metrics)} }
routes:
  - { path: /api, upstream: "http://api:8080" }
`

const problems = (text: string) => problemsOrNone(text, env)

t.test('a host no socket can listen on is refused at its line, with what to write', async (t) => {
  const cases: [string, string][] = [
    ['[::1]', 'is an IPv6 address in brackets, as a URL writes it; write it without them: ::1'],
    ['[::]', 'is an IPv6 address in brackets, as a URL writes it; write it without them: ::'],
    ['http://0.0.0.0', 'is a URL; write the address alone, e.g. 0.0.0.0'],
    ['0.0.0.0:3000', 'holds a port; write the address alone (0.0.0.0) and the port in SECTION.port'],
    ['localhost:9464', 'holds a port; write the address alone (localhost) and the port in SECTION.port'],
    [' 127.0.0.1', 'must be an IP address (0.0.0.0, ::, 127.0.0.1) or a host name'],
    ['app host', 'must be an IP address (0.0.0.0, ::, 127.0.0.1) or a host name'],
  ]
  for (const [host, message] of cases) {
    t.same(
      problems(withHosts(host)),
      [`1 server.host: ${message.replace('SECTION', 'server')}`],
      `server.host ${host}`,
    )
    t.same(
      problems(withHosts('0.0.0.0', host)),
      [`4 metrics.host: ${message.replace('SECTION', 'metrics')}`],
      `metrics.host ${host}`,
    )
  }
})

t.test('an IP address, a host name or the default is taken', async (t) => {
  for (const host of [
    '0.0.0.0',
    '::',
    '::1',
    '127.0.0.1',
    'fe80::1%eth0',
    'localhost',
    'gatehouse.internal',
    'my_service',
  ])
    t.doesNotThrow(() => parseConfig(withHosts(host, host), 'routes.yaml', env), host)
})

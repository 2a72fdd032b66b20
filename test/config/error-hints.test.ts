import t from 'tap'
import { ConfigError } from '../../src/config/errors.js'
import { parseConfig } from '../../src/config/load.js'

const SECRET = 'x'.repeat(32)
const env = { OIDC_CLIENT_SECRET: 'client-secret', SESSION_SECRET: SECRET }

const minimal = `server:
  publicUrl: https://app.example.com
oidc:
  issuer: https://idp.example.com
  clientId: my-bff
  clientSecret: \${OIDC_CLIENT_SECRET}
session:
  secret: \${SESSION_SECRET}
routes:
  - path: /api/orders
    upstream: http://orders:8080
`

function problems(text: string, vars: NodeJS.ProcessEnv = env): string[] {
  try {
    parseConfig(text, 'routes.yaml', vars)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return err.problems.map((p) => `${p.line} ${p.path}: ${p.message}`)
  }
  throw new Error('expected a ConfigError')
}

t.test('an unknown key names the option it is closest to', async (t) => {
  t.same(
    problems(minimal.replace('  publicUrl:', '  publicURL:')),
    [
      '2 server.publicURL: unknown option (did you mean publicUrl?)',
      '1 server.publicUrl: is required',
    ].sort(),
  )
  t.same(problems(`${minimal}    upstraem: http://x:1\n`), [
    '12 routes[0].upstraem: unknown option (did you mean upstream?)',
  ])
  t.same(problems(`${minimal}token:\n  refreshBefore: 10s\n`), [
    '12 token: unknown option (did you mean tokens?)',
  ])
  t.same(
    problems(`${minimal}colour: blue\n`),
    ['12 colour: unknown option'],
    'nothing is suggested when no option is close',
  )
})

t.test('every unset variable is reported at once, with every other problem', async (t) => {
  const text = minimal
    .replace('  publicUrl: https://app.example.com', '  publicUrl: ${PUBLIC_URL}\n  port: ${PORT}')
    .replace('    upstream: http://orders:8080', '    upstream: http://orders:8080\n    token: sometimes')
    .replace('  clientId: my-bff', '  clientId: ${CLIENT_ID}\n  colour: blue')
  t.same(problems(text, {}), [
    '2 server.publicUrl: environment variable PUBLIC_URL is not set (or use ${PUBLIC_URL:-default} for a default)',
    '3 server.port: environment variable PORT is not set (or use ${PORT:-default} for a default)',
    '6 oidc.clientId: environment variable CLIENT_ID is not set (or use ${CLIENT_ID:-default} for a default)',
    '7 oidc.colour: unknown option',
    '8 oidc.clientSecret: environment variable OIDC_CLIENT_SECRET is not set (a secret: set it in the environment)',
    '10 session.secret: environment variable SESSION_SECRET is not set (a secret: set it in the environment)',
    '14 routes[0].token: must be one of user, optional-user, client, none (got "sometimes")',
  ])
})

t.test('no default is suggested for a secret, by option or by variable name', async (t) => {
  const text = minimal.replace(
    '  secret: ${SESSION_SECRET}',
    '  secrets: ["${SESSION_SECRET}", "${OLD_SESSION_SECRET}"]\n  store: redis://:${REDIS_PASSWORD}@redis:6379/0',
  )
  const found = problems(text, { OIDC_CLIENT_SECRET: 'x' })
  t.same(found, [
    '8 session.secrets[0]: environment variable SESSION_SECRET is not set (a secret: set it in the environment)',
    '8 session.secrets[1]: environment variable OLD_SESSION_SECRET is not set (a secret: set it in the environment)',
    '9 session.store: environment variable REDIS_PASSWORD is not set (a secret: set it in the environment)',
  ])
  t.notMatch(found.join('\n'), ':-default')
})

t.test('an unquoted ${VAR} in a flow collection gets one line that says to quote it', async (t) => {
  t.same(
    problems(minimal.replace('  clientId: my-bff', '  clientId: my-bff\n  scopes: [openid, ${SCOPE}]')),
    [
      '6 : YAML syntax error: Missing , or : between flow sequence items; inside [ ] or { } quote the variable: "${SCOPE}"',
    ],
  )
  t.same(
    problems(
      minimal.replace('server:\n  publicUrl: https://app.example.com', 'server: { publicUrl: ${URL} }'),
    ),
    [
      '1 : YAML syntax error: Unexpected flow-map-start at node end; inside [ ] or { } quote the variable: "${URL}"',
    ],
  )
  t.same(
    problems(minimal.replace('  clientId: my-bff', '  clientId: my-bff: oops')),
    ['5 : YAML syntax error: Nested mappings are not allowed in compact mappings'],
    'other syntax errors get no hint',
  )
  const quoted = parseConfig(
    minimal.replace('server:\n  publicUrl: https://app.example.com', 'server: { publicUrl: "${URL}" }'),
    'routes.yaml',
    { ...env, URL: 'https://quoted.example' },
  )
  t.equal(quoted.server.publicUrl, 'https://quoted.example', 'the quoted form works')
})

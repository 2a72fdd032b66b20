import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { configProblems } from '../helpers/config-problems.js'

/*
 * `oidc.timeout: 25d` passed check; Node fires a timer of more than
 * 2^31 - 1 ms (about 24.8 days) at once, so discovery then "timed out" at
 * once. Every duration the gateway keeps with a timer is bounded, as
 * drainTimeout and websocket.pingInterval already were. And a route's
 * `timeout: 0` turned every timeout of its calls off (undici reads 0 as
 * none): a hung upstream held the request for ever. Every outbound call
 * has a timeout, so 0 is refused where a call is timed.
 */

const SECRET = 's'.repeat(40)
const env = { SESSION_SECRET: SECRET }

const config = ({ server = '', oidc = '', rest = '' } = {}) => `server:
  publicUrl: https://app.example.com${server}
oidc:
  issuer: https://idp.example.com
  clientId: my-bff
  clientSecret: s${oidc}
session:
  secret: \${SESSION_SECRET}
${rest}`

const AT_MOST =
  'must be at most 1d: the gateway keeps it with a timer (Node fires one of more than 24.8 days at once)'

t.test('a duration kept by a timer is at most a day', async (t) => {
  t.same(configProblems(config({ oidc: '\n  timeout: 25d' }), env), [`7 oidc.timeout: ${AT_MOST}`])
  t.same(configProblems(config({ oidc: '\n  connectTimeout: 2d\n  lateAnswerWait: 30d' }), env), [
    `7 oidc.connectTimeout: ${AT_MOST}`,
    `8 oidc.lateAnswerWait: ${AT_MOST}`,
  ])
  t.same(
    configProblems(
      config({
        server: '\n  keepAliveTimeout: 25d',
        rest: 'tokens:\n  refreshWait: 2160000\nroutes:\n  - path: /api\n    upstream: http://orders:8080\n    timeout: 25d\n',
      }),
      env,
    ),
    [
      `3 server.keepAliveTimeout: ${AT_MOST}`,
      `11 tokens.refreshWait: ${AT_MOST}`,
      `15 routes[0].timeout: ${AT_MOST}`,
    ],
  )
})

t.test('in every provider, and in every frontend', async (t) => {
  const text = `server: {}
identityProviders:
  - { name: a, issuer: https://a.example.com, clientId: bff, clientSecret: s, timeout: 25d }
session: { secret: "\${SESSION_SECRET}" }
frontends:
  - name: app
    host: app.example.com
    publicUrl: https://app.example.com
    routes:
      - { path: /api, upstream: "http://orders:8080", timeout: 25d }
`
  t.same(configProblems(text, env), [
    `3 identityProviders[0].timeout: ${AT_MOST}`,
    `10 frontends[0].routes[0].timeout: ${AT_MOST}`,
  ])
})

t.test('a timeout of 0 on an outbound call is refused: it would be none', async (t) => {
  t.same(
    configProblems(
      config({
        oidc: '\n  timeout: 0\n  connectTimeout: 0s',
        rest: 'routes:\n  - path: /api\n    upstream: http://orders:8080\n    timeout: 0ms\n',
      }),
      env,
    ),
    [
      '7 oidc.timeout: must be more than 0: every call to the identity provider has a timeout',
      '8 oidc.connectTimeout: must be more than 0: every call to the identity provider has a timeout',
      '14 routes[0].timeout: must be more than 0: every call to an upstream has a timeout',
    ],
  )
})

t.test('server.sendTimeout is more than 0 and at most a day: it is what ends a slow read', async (t) => {
  t.same(configProblems(config({ server: '\n  sendTimeout: 0' }), env), [
    '3 server.sendTimeout: must be more than 0: a browser that stops reading would hold its upstream connection for ever',
  ])
  t.same(configProblems(config({ server: '\n  sendTimeout: 25d' }), env), [
    `3 server.sendTimeout: ${AT_MOST}`,
  ])
  const loaded = parseConfig(config(), 'routes.yaml', env)
  t.equal(loaded.server.sendTimeout, 60_000, 'a minute by default, as nginx has it')
})

t.test('a day, and what 0 documents as off, load', async (t) => {
  const loaded = parseConfig(
    config({
      server: '\n  keepAliveTimeout: 24h',
      oidc: '\n  timeout: 1d\n  connectTimeout: 86400\n  lateAnswerWait: 0',
      rest: 'tokens:\n  refreshWait: 1d\n  retryCooldown: 0\nroutes:\n  - path: /api\n    upstream: http://orders:8080\n    timeout: 1d\n',
    }),
    'routes.yaml',
    env,
  )
  t.same(
    [loaded.oidc.timeout, loaded.oidc.connectTimeout, loaded.oidc.lateAnswerWait, loaded.routes[0]!.timeout],
    [86_400_000, 86_400_000, 0, 86_400_000],
  )
  t.equal(loaded.tokens.retryCooldown, 0, 'retryCooldown: 0 turns the cooldown off, as documented')
  t.equal(loaded.server.keepAliveTimeout, 86_400_000)
})

t.test('a wait for the headers longer than for the whole request is a check error', async (t) => {
  // `check` passed it, and Node's server refused to start, naming neither option.
  t.same(configProblems(config({ server: '\n  headersTimeout: 120s\n  requestTimeout: 60s' }), env), [
    '3 server.headersTimeout: must be at most server.requestTimeout (60s): the headers are part of the request',
  ])
  t.doesNotThrow(() =>
    parseConfig(config({ server: '\n  headersTimeout: 60s\n  requestTimeout: 60s' }), 'r', env),
  )
})

import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { CONFIG_ENV, configHead, configProblems } from '../helpers/config-problems.js'

/*
 * A list written as a mapping was replaced by its default: `routes: {a: {…}}`
 * loaded as no routes at all, and applied so by a reload; a mapping written
 * as a list became one keyed "0", "1", …; a single value where a list goes
 * became a list of one. Each is an error at its option and line.
 */

const env = CONFIG_ENV
const base = configHead()

const LIST = 'must be a list ("- item" lines, or [a, b])'
const MAPPING = 'must be a mapping ("key: value" lines, or {key: value})'

t.test('a list written as a mapping is an error, not its default', async (t) => {
  t.same(configProblems(`${base}routes: {a: {path: /x, upstream: "http://x:1"}}\n`, env), [
    `9 routes: ${LIST}, not a mapping`,
  ])
  t.same(configProblems(`${base}routes:\n  a:\n    path: /x\n    upstream: http://x:1\n`, env), [
    `9 routes: ${LIST}, not a mapping`,
  ])
  t.same(
    configProblems(base.replace('  clientId: my-bff', '  clientId: my-bff\n  scopes: {a: openid}'), env),
    [`6 oidc.scopes: ${LIST}, not a mapping`],
  )
  t.same(
    configProblems(
      `${base}routes:\n  - path: /x\n    upstream: http://x:1\n    passHeaders: {x-real-ip: true}\n`,
      env,
    ),
    [`12 routes[0].passHeaders: ${LIST}, not a mapping`],
  )
  t.same(
    configProblems(
      `${base.replace(/oidc:/, 'identityProviders:\n  name: a\n  x:').replace(/\n {2}(issuer|clientId|clientSecret):/g, '\n    $1:')}`,
      env,
    ),
    [`3 identityProviders: ${LIST}, not a mapping`],
    'a provider written without its "- " is not taken for a list of one',
  )
})

t.test('a mapping written as a list is an error, not one keyed 0, 1, …', async (t) => {
  t.same(
    configProblems(
      base.replace('  clientId: my-bff', '  clientId: my-bff\n  authorizationParams: [prompt, consent]'),
      env,
    ),
    [`6 oidc.authorizationParams: ${MAPPING}, not a list`],
  )
  t.same(configProblems(`${base}auth: [basePath, /login]\n`, env), [`9 auth: ${MAPPING}, not a list`])
  t.same(configProblems(`${base}auth:\n  rateLimit: [30, 1m]\n`, env), [
    `10 auth.rateLimit: ${MAPPING}, not a list`,
  ])
  t.same(configProblems(base.replace('server:\n  publicUrl: https://app.example.com', 'server: [a]'), env), [
    `1 server: ${MAPPING}, not a list`,
  ])
})

t.test('a single value where a list goes is an error, not a list of one', async (t) => {
  t.same(
    configProblems(
      base.replace('  clientId: my-bff', '  clientId: my-bff\n  scopes: openid profile offline_access'),
      env,
    ),
    [`6 oidc.scopes: ${LIST}, not a single value`],
  )
  t.same(
    configProblems(base.replace('  secret: ${SESSION_SECRET}', '  secrets: ${SESSION_SECRET}'), env),
    [`8 session.secrets: ${LIST}, not a single value`],
    'and the value, a secret here, is not shown',
  )
  t.same(configProblems(`${base}auth:\n  rateLimit: 30\n`, env), [
    `10 auth.rateLimit: ${MAPPING}, not a single value`,
  ])
})

t.test('an option left empty is an error that says so', async (t) => {
  t.same(configProblems(`${base}routes:\n`, env), [`9 routes: ${LIST}, not empty (write [] for none)`])
  t.same(configProblems(`${base}auth:\n`, env), [`9 auth: ${MAPPING}, not empty`])
})

t.test('each is reported with every other problem, once', async (t) => {
  t.same(
    configProblems(
      `${base}  keyPrefix: "a{b}"\nroutes: {a: 1}\nauth: [x]\ncsrf: {header: 'a b'}\n`.replace(
        '  clientId: my-bff\n',
        '',
      ),
      env,
    ),
    [
      '3 oidc.clientId: is required',
      '8 session.keyPrefix: must not contain { or }',
      `9 routes: ${LIST}, not a mapping`,
      `10 auth: ${MAPPING}, not a list`,
      "11 csrf.header: expected string to match '^[A-Za-z0-9-]+$'",
    ],
    'an option with a default takes it, and the cross-field rules still run',
  )
  t.same(
    configProblems(
      `${base.replace('secret: ${SESSION_SECRET}', 'secrets: {a: b}')}  keyPrefix: "a{b}"\n`,
      env,
    ),
    [`8 session.secrets: ${LIST}, not a mapping`],
    'one without a default reads as not written: the cross-field rules (secret or secrets) wait',
  )
})

t.test('the right shapes load as written, mappings inside unions included', async (t) => {
  const config = parseConfig(
    `${base.replace('  clientId: my-bff', '  clientId: my-bff\n  scopes: [openid]\n  authorizationParams: {prompt: consent}')}auth:
  rateLimit: {max: 5}
routes:
  - path: /x
    upstream: http://x:1
    passHeaders: [x-real-ip]
    websocket: {maxMessage: 2mb}
  - path: /y
    upstream: http://y:1
    websocket: true
`,
    'routes.yaml',
    env,
  )
  t.same(config.oidc.scopes, ['openid'])
  t.same(config.oidc.authorizationParams, { prompt: 'consent' })
  t.equal(config.auth.rateLimit.max, 5)
  t.same(
    config.routes.map((r) => [r.path, r.passHeaders, r.websocket === false ? false : r.websocket.maxMessage]),
    [
      ['/x', ['x-real-ip'], 2 * 1024 * 1024],
      ['/y', [], 1024 * 1024],
    ],
  )
})

import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError } from '../../src/config/errors.js'
import { loadConfig, parseConfig } from '../../src/config/load.js'
import { configProblems } from '../helpers/config-problems.js'

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

/** The problems of a bad document, as `line path: message` strings. */
const problems = (text: string, vars: NodeJS.ProcessEnv = env) => configProblems(text, vars)

t.test('a minimal file gets every default, resolved and frozen', async (t) => {
  const config = parseConfig(minimal, 'routes.yaml', env)
  t.same(config.server, {
    host: '0.0.0.0',
    port: 3000,
    publicUrl: 'https://app.example.com',
    secure: true,
    trustProxy: false,
    headersTimeout: 10_000,
    requestTimeout: 60_000,
    keepAliveTimeout: 72_000,
    sendTimeout: 60_000,
    drainTimeout: 30_000,
    maxHeaderSize: 16 * 1024,
    maxWebSockets: 10_000,
  })
  t.equal(config.oidc.clientSecret, 'client-secret')
  t.equal(config.oidc.clientAuth, 'client_secret_basic')
  t.same(config.oidc.scopes, ['openid', 'profile', 'offline_access'])
  t.equal(config.oidc.timeout, 10_000)
  t.equal(config.oidc.dpop, false)
  t.equal(config.oidc.dpopAlgorithm, 'ES256')
  t.same(config.session.secrets, [SECRET])
  t.equal(config.session.cookieName, '__Host-Http-gatehouse', 'https gets the __Host-Http- prefix')
  t.equal(config.session.idleTimeout, 30 * 60_000)
  t.equal(config.session.absoluteTimeout, 12 * 3_600_000)
  t.equal(config.session.maxSessions, 100_000)
  t.equal(config.session.maxPerUser, 50)
  t.equal(config.session.maxWebSockets, 16)
  t.equal(config.session.localCache, 10_000)
  t.equal(config.tokens.refreshBefore, 30_000)
  t.equal(config.auth.basePath, '/auth')
  t.equal(config.csrf.header, 'x-csrf')
  t.same(config.routes[0], {
    path: '/api/orders',
    upstream: 'http://orders:8080',
    rewritePath: '/api/orders',
    token: 'user',
    scopes: [],
    // Without oidc.dpop too: a session signed in while it was on keeps its key.
    dpop: true,
    retryOnInvalidToken: true,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    csrf: true,
    anonymous: false,
    timeout: 30_000,
    bodyLimit: 1024 * 1024,
    websocket: false,
    allowClearSiteData: false,
    allowNetworkErrorLogging: false,
    allowStrictTransportSecurity: false,
    allowInternalRedirect: false,
    allowServiceWorkerScope: false,
    passHeaders: [],
  })
  t.same(config.metrics, { enabled: true, host: '127.0.0.1', port: 9464 }, 'metrics off the public port')
  t.ok(
    Object.isFrozen(config) && Object.isFrozen(config.routes[0]) && Object.isFrozen(config.session.secrets),
  )
})

t.test('the full example of the README loads, with durations in every form', async (t) => {
  const config = parseConfig(
    `server:   { host: 127.0.0.1, port: 8443, publicUrl: http://localhost:3000, trustProxy: true }
oidc:
  issuer: http://127.0.0.1:4000
  clientId: my-bff
  clientSecret: \${OIDC_CLIENT_SECRET}
  clientAuth: client_secret_post
  scopes: [openid]
  timeout: 500ms
session:
  secrets: ["\${SESSION_SECRET}", "${'o'.repeat(40)}"]
  store: redis://redis:6379/2
  idleTimeout: 90
  absoluteTimeout: 1d
  cookieName: app
  maxSessions: 5000
tokens:   { refreshBefore: 1m }
auth:     { basePath: /bff/ }
csrf:     { header: X-Requested-By }
logging:  { level: debug }
routes:
  - path: /api/orders/
    upstream: http://orders:8080/
    rewritePath: /v1/orders
    token: client
    scopes: [orders.read]
    csrf: false
    timeout: 12h
    bodyLimit: 512kb
`,
    'routes.yaml',
    env,
  )
  t.equal(config.server.port, 8443)
  t.equal(config.server.secure, false)
  t.equal(config.session.cookieName, 'app', 'no __Host- prefix on http')
  t.equal(config.oidc.timeout, 500)
  t.equal(config.session.idleTimeout, 90_000)
  t.equal(config.session.absoluteTimeout, 86_400_000)
  t.equal(config.session.secrets.length, 2)
  t.equal(config.session.maxSessions, 5_000)
  t.equal(config.tokens.refreshBefore, 60_000)
  t.equal(config.auth.basePath, '/bff')
  t.equal(config.csrf.header, 'x-requested-by')
  t.equal(config.routes[0]!.path, '/api/orders')
  t.equal(config.routes[0]!.upstream, 'http://orders:8080')
  t.equal(config.routes[0]!.timeout, 12 * 3_600_000)
  t.equal(config.routes[0]!.bodyLimit, 512 * 1024)
})

t.test('JSON is YAML and loads too', async (t) => {
  const json = JSON.stringify({
    server: { publicUrl: 'http://localhost:3000' },
    oidc: { issuer: 'http://localhost:4000', clientId: 'a', clientSecret: '${OIDC_CLIENT_SECRET}' },
    session: { secret: SECRET },
    routes: [{ path: '/api', upstream: 'http://127.0.0.1:8080', token: 'none' }],
  })
  t.equal(parseConfig(json, 'routes.json', env).routes[0]!.token, 'none')
})

t.test('env: ${VAR}, ${VAR:-default}, and numbers from the environment', async (t) => {
  const text = minimal.replace(
    '  publicUrl: https://app.example.com',
    '  publicUrl: ${URL:-https://default.example}\n  port: ${PORT}',
  )
  const config = parseConfig(text, 'routes.yaml', { ...env, PORT: '8080' })
  t.equal(config.server.publicUrl, 'https://default.example')
  t.equal(config.server.port, 8080)
  t.equal(
    parseConfig(text, 'routes.yaml', { ...env, PORT: '1', URL: 'https://set.example' }).server.publicUrl,
    'https://set.example',
  )
})

t.test('every bad file is named by field path and YAML line', async (t) => {
  t.same(
    problems(minimal, { SESSION_SECRET: SECRET }),
    [
      '6 oidc.clientSecret: environment variable OIDC_CLIENT_SECRET is not set (a secret: set it in the environment)',
    ],
    'a missing env var',
  )
  t.same(
    problems(minimal.replace('  clientId: my-bff', '  clientId: my-bff\n  clientID: typo')),
    ['6 oidc.clientID: unknown option (did you mean clientId?)'],
    'an unknown key',
  )
  t.same(
    problems(`${minimal}    token: sometimes\n`),
    ['12 routes[0].token: must be one of user, optional-user, client, exchange, none (got "sometimes")'],
    'a bad enum',
  )
  t.same(
    problems(`${minimal}  - path: /api/reports\n    token: client\n`),
    ['12 routes[1].upstream: is required'],
    'a route without an upstream',
  )
  t.same(
    problems(minimal, { ...env, SESSION_SECRET: 'short' }),
    ['8 session.secret: must be at least 32 characters (got 5)'],
    'a secret that is too short',
  )
  t.same(
    problems(minimal.replace('  secret: ${SESSION_SECRET}', '  secret: ${SESSION_SECRET}\n  maxSessions: 0')),
    ['9 session.maxSessions: expected integer to be greater or equal to 1'],
    'a session cap below one',
  )
  t.same(
    problems(minimal.replace('  secret: ${SESSION_SECRET}', '  secret: ${SESSION_SECRET}\n  maxPerUser: 0')),
    ['9 session.maxPerUser: expected integer to be greater or equal to 1'],
    'a per-user bound below one: no way to turn the bound off',
  )
  t.same(
    problems(
      minimal.replace('  secret: ${SESSION_SECRET}', '  secret: ${SESSION_SECRET}\n  maxPerUser: 10001'),
    ),
    ['9 session.maxPerUser: expected integer to be less or equal to 10000'],
    'a per-user bound no one reaches, each sign-in reading that many sessions',
  )
  t.same(
    problems(minimal.replace('  secret: ${SESSION_SECRET}', '  secret: ${SESSION_SECRET}\n  localCache: -1')),
    ['9 session.localCache: expected integer to be greater or equal to 0'],
    'a negative local cache',
  )
  t.same(
    problems(`${minimal}  - path: /api/orders/\n    upstream: http://other:8080\n`),
    ['12 routes[1].path: duplicates routes[0].path (/api/orders)'],
    'a duplicate route path',
  )
  t.same(
    problems(`${minimal}    anonymous: true\n`),
    ['12 routes[0].anonymous: applies only to token: client routes'],
    'anonymous on a user route',
  )
  t.same(
    problems(`${minimal}metrics: { port: 3000 }\n`),
    ['12 metrics.port: must differ from server.port: /metrics stays off the public listener'],
    'metrics on the public port',
  )
  t.same(
    problems(minimal.replace('  clientId: my-bff', '  clientId: my-bff: oops')),
    ['5 : YAML syntax error: Nested mappings are not allowed in compact mappings'],
    'a YAML syntax error',
  )
})

t.test('more bad values, all reported at once', async (t) => {
  const found = problems(`server: { publicUrl: https://app.example.com/path }
oidc:
  issuer: http://idp.example.com
  clientId: a
  clientSecret: b
  timeout: soon
session:
  secret: ${SECRET}
  store: postgres://db
  idleTimeout: 1h
  absoluteTimeout: 30m
auth: { basePath: /api }
routes:
  - path: api
    upstream: ftp://files
  - path: /api/x
    upstream: http://x:1
    token: none
    scopes: [a]
`)
  t.same(found, [
    '1 server.publicUrl: must be an origin only, without a path, query or fragment',
    '3 oidc.issuer: must use https; plain http is allowed only for loopback hosts (localhost, 127.0.0.0/8, [::1])',
    '6 oidc.timeout: must be a duration like 500ms, 30s, 5m, 12h, 1d or a number of seconds (got "soon")',
    '9 session.store: must be memory, or a redis://, rediss://, redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster:// URL',
    '11 session.absoluteTimeout: must not be shorter than idleTimeout',
    '14 routes[0].path: must be a path prefix such as /api/orders, without .., query or spaces',
    '15 routes[0].upstream: must be an http(s) URL such as http://orders:8080',
    '16 routes[1].path: overlaps auth.basePath (/api)',
    '19 routes[1].scopes: applies only to routes that forward a token (user, optional-user, client)',
  ])
})

t.test('no URL carries credentials, which nothing sends and the start-up line would log', async (t) => {
  t.same(problems(minimal.replace('https://app.example.com', 'https://u:p@app.example.com')), [
    '2 server.publicUrl: must not carry credentials (user:password@): Gatehouse never sends them, and the URL is logged',
  ])
  t.same(problems(minimal.replace('https://idp.example.com', 'https://client:s3cret@idp.example.com')), [
    '4 oidc.issuer: must not carry credentials (user:password@): Gatehouse never sends them, and the URL is logged',
  ])
  t.same(problems(minimal.replace('http://orders:8080', 'http://svc:pw@orders:8080')), [
    '11 routes[0].upstream: must not carry credentials (user:password@): Gatehouse never sends them, and the URL is logged',
  ])
  t.same(
    problems(minimal.replace('http://orders:8080', 'http://svc@orders:8080')).length,
    1,
    'a user alone too',
  )
})

t.test('publicUrl is https, so cookies are Secure, but on loopback', async (t) => {
  t.same(problems(minimal.replace('https://app.example.com', 'http://app.example.com')), [
    '2 server.publicUrl: must use https, so cookies are Secure; plain http is allowed only for loopback hosts (localhost, 127.0.0.0/8, [::1])',
  ])
  for (const origin of ['http://localhost:3000', 'http://127.0.0.1:8080', 'http://[::1]:3000']) {
    const config = parseConfig(minimal.replace('https://app.example.com', origin), 'routes.yaml', env)
    t.equal(config.server.secure, false, `${origin}: loopback development, cookies without Secure`)
  }
})

t.test('routes[].resource is an absolute URI on user routes (RFC 8707)', async (t) => {
  const routes = (lines: string) => minimal.replace(/routes:\n[\s\S]*$/, `routes:\n${lines}`)
  const config = parseConfig(
    routes(`  - { path: /orders, upstream: http://orders:8080, resource: https://orders.example }
  - { path: /reports, upstream: http://reports:8080, resource: "urn:example:reports", scopes: [reports.read] }
  - { path: /me, upstream: http://me:8080, token: optional-user, scopes: [profile] }
`),
    'routes.yaml',
    env,
  )
  t.equal(config.routes[0]!.resource, 'https://orders.example')
  t.same([config.routes[1]!.resource, config.routes[1]!.scopes], ['urn:example:reports', ['reports.read']])
  t.equal(config.routes[2]!.resource, undefined)
  t.same(
    problems(
      routes(`  - { path: /a, upstream: http://a:1, resource: orders }
  - { path: /b, upstream: http://b:1, resource: "https://b.example/#frag" }
  - { path: /c, upstream: http://c:1, token: client, resource: https://c.example }
  - { path: /d, upstream: http://d:1, resource: "/relative/path" }
`),
    ),
    [
      '10 routes[0].resource: must be an absolute URI such as https://orders.example',
      '11 routes[1].resource: must not contain a fragment (RFC 8707 §2)',
      '12 routes[2].resource: applies only to token: user and optional-user routes',
      '13 routes[3].resource: must be an absolute URI such as https://orders.example',
    ],
  )
})

t.test('no document crashes the loader: it returns a config or a ConfigError', async (t) => {
  const weird = [
    '',
    '~',
    'null',
    '42',
    '"text"',
    '[1, 2]',
    '{}',
    'routes: 5',
    'server: []',
    '&a [*a]',
    'a: &a [*a]',
    '- - -',
    '? [a]\n: b',
    '!!binary aGk=',
    'server: !!set {a, b}',
    '\t\tx: 1',
    'a: 1\na: 2',
  ]
  for (const doc of weird) {
    t.throws(() => parseConfig(doc, 'w.yaml', env), ConfigError, JSON.stringify(doc))
  }
})

t.test('loadConfig reads files and names a missing one', async (t) => {
  const file = join(tmpdir(), `gatehouse-${process.pid}.yaml`)
  writeFileSync(file, minimal)
  t.equal(loadConfig(file, env).routes.length, 1)
  t.throws(() => loadConfig(`${file}.missing`, env), {
    code: 'GATEHOUSE_ERR_CONFIG',
    message: /file not found/,
  })
})

t.test('loadConfig refuses what is not a regular file, by name, and follows a symlink to one', async (t) => {
  // Read whole, a device never ends (/dev/zero) or reads as an empty document
  // (/dev/null); a FIFO blocks the reader (test/config/read.test.ts).
  t.throws(() => loadConfig('/dev/null', env), {
    code: 'GATEHOUSE_ERR_CONFIG',
    problems: [{ path: '', message: /^is a character device, not a regular file/ }],
    message: /\/dev\/null is a character device, not a regular file/,
  })
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-load-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // A symlink, as a ConfigMap volume's routes.yaml is (read.test.ts follows its whole chain).
  writeFileSync(join(dir, 'routes.real.yaml'), minimal)
  symlinkSync('routes.real.yaml', join(dir, 'routes.yaml'))
  t.equal(loadConfig(join(dir, 'routes.yaml'), env).routes.length, 1)
})

t.test('loadConfig refuses a file over 1 MiB, valid or not, and loads one of exactly 1 MiB', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-load-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const MiB = 1024 * 1024
  // A valid config padded with a comment to the size wanted.
  const sized = (bytes: number) => `${minimal}#${'x'.repeat(bytes - minimal.length - 2)}\n`
  const large = join(dir, 'large.yaml')
  writeFileSync(large, sized(MiB + 1))
  t.throws(() => loadConfig(large, env), {
    code: 'GATEHOUSE_ERR_CONFIG',
    message: `${large}: 1 configuration problem\n  ${large} is ${MiB + 1} bytes; a config file may be at most 1 MiB`,
  })
  const fits = join(dir, 'fits.yaml')
  writeFileSync(fits, sized(MiB))
  t.equal(loadConfig(fits, env).routes.length, 1, 'the bound itself is allowed')
})

t.test('a number-looking id or secret keeps the text that was typed', async (t) => {
  const config = parseConfig(
    minimal
      .replace('clientId: my-bff', 'clientId: 123456789012345678')
      .replace('${OIDC_CLIENT_SECRET}', '0123')
      .replace('${SESSION_SECRET}', '1234567890123456789012345678901234567890')
      .replace('server:\n', 'server:\n  port: 08080\n'),
    'routes.yaml',
    env,
  )
  t.equal(config.oidc.clientId, '123456789012345678', 'beyond a double: not rounded')
  t.equal(config.oidc.clientSecret, '0123', 'the leading zero stays')
  t.same(config.session.secrets, ['1234567890123456789012345678901234567890'])
  t.equal(config.server.port, 8080, 'a number field still gets its number')
})

t.test('an option is located at its key, a missing one at its parent', async (t) => {
  t.same(
    problems(minimal.replace('session:\n', 'session:\n  colour:\n    - blue\n')),
    ['8 session.colour: unknown option'],
    'the key line, not the block value below it',
  )
  t.same(problems(minimal.replace('  publicUrl: https://app.example.com\n', '  host: 127.0.0.1\n')), [
    '1 server.publicUrl: is required',
  ])
  t.same(
    problems(minimal.replace('  secret: ${SESSION_SECRET}', `  secrets:\n    - ${SECRET}\n    - short`)),
    ['10 session.secrets[1]: must be at least 32 characters (got 5)'],
    'a list item at its own line',
  )
})

t.test('an empty secret after the first holds a place: ${SECOND:-} in the list', async (t) => {
  const rotating = (second: string) =>
    parseConfig(
      minimal.replace(
        '  secret: ${SESSION_SECRET}',
        '  secrets: ["${SESSION_SECRET}", "${SESSION_SECRET_SECOND:-}"]',
      ),
      'routes.yaml',
      { ...env, SESSION_SECRET_SECOND: second },
    )
  t.same(rotating('').session.secrets, [SECRET], 'unset: the one secret alone')
  t.same(rotating('o'.repeat(40)).session.secrets, [SECRET, 'o'.repeat(40)], 'set: it opens old cookies too')
  t.same(
    problems(minimal.replace('  secret: ${SESSION_SECRET}', '  secrets: ["", "${SESSION_SECRET}"]')),
    ['8 session.secrets[0]: must be at least 32 characters (got 0)'],
    'the first seals: never empty',
  )
  t.same(
    problems(minimal.replace('  secret: ${SESSION_SECRET}', `  secrets: ["${SECRET}", "short"]`)),
    ['8 session.secrets[1]: must be at least 32 characters (got 5)'],
    'a short one is still refused',
  )
})

t.test('an anonymous client route loads, with a warning that names it and its line', async (t) => {
  const warnings: string[] = []
  const text = `${minimal}  - path: /api/reports\n    upstream: http://reports:8080\n    token: client\n    anonymous: true\n`
  const config = parseConfig(text, 'routes.yaml', env, {
    onWarning: (w) => warnings.push(`${w.line} ${w.path}: ${w.message}`),
  })
  t.equal(config.routes[1]!.anonymous, true)
  t.same(warnings, [
    "15 routes[1].anonymous: /api/reports serves callers without a session: anyone who reaches it spends the gateway's client credentials",
  ])
  const quiet: string[] = []
  const closed = parseConfig(text.replace('    anonymous: true\n', ''), 'routes.yaml', env, {
    onWarning: (w) => quiet.push(w.message),
  })
  t.equal(closed.routes[1]!.anonymous, false, 'a client route needs a session by default')
  t.same(quiet, [], 'and draws no warning')
})

t.test('passHeaders names only headers Gatehouse strips, never one it sets', async (t) => {
  const config = parseConfig(`${minimal}    passHeaders: [X-Real-IP, Forwarded]\n`, 'routes.yaml', env)
  t.same(config.routes[0]!.passHeaders, ['x-real-ip', 'forwarded'], 'lower-cased once, at load')
  t.same(
    problems(
      `${minimal}    passHeaders: [authorization, X-Forwarded-For, x_forwarded_host, cookie, connection, x-app, 'a b']\n`,
    ),
    [
      '12 routes[0].passHeaders[0]: authorization is set or consumed by Gatehouse itself; it cannot pass',
      '12 routes[0].passHeaders[1]: X-Forwarded-For is set or consumed by Gatehouse itself; it cannot pass',
      '12 routes[0].passHeaders[2]: x_forwarded_host is set or consumed by Gatehouse itself; it cannot pass',
      '12 routes[0].passHeaders[3]: cookie is set or consumed by Gatehouse itself; it cannot pass',
      '12 routes[0].passHeaders[4]: connection is set or consumed by Gatehouse itself; it cannot pass',
      '12 routes[0].passHeaders[5]: x-app is not a header Gatehouse strips, so it passes already (see docs/security.md)',
      '12 routes[0].passHeaders[6]: must be a header name',
    ],
  )
  t.same(problems(`${minimal}    passHeaders: [traceparent, Baggage]\n`), [
    '12 routes[0].passHeaders[0]: traceparent is trace context, which Gatehouse never passes from a client (see docs/observability.md)',
    '12 routes[0].passHeaders[1]: Baggage is trace context, which Gatehouse never passes from a client (see docs/observability.md)',
  ])
})

t.test('websocket: true takes the bounds by default; a mapping sets some of them', async (t) => {
  const config = parseConfig(
    `${minimal}    websocket: true
  - path: /live
    upstream: http://live:8080
    websocket:
      maxMessage: 64kb
      pingInterval: 5s
  - path: /vite
    upstream: http://vite:5173
    token: none
    websocket: { compression: true }
`,
    'routes.yaml',
    env,
  )
  const defaults = { maxMessage: 1024 * 1024, compression: false, pingInterval: 30_000 }
  t.same(config.routes[0]!.websocket, defaults, 'true: 1 MiB, no compression, a ping every 30 s')
  t.same(config.routes[1]!.websocket, { ...defaults, maxMessage: 64 * 1024, pingInterval: 5_000 })
  t.same(config.routes[2]!.websocket, { ...defaults, compression: true })
  t.equal(parseConfig(minimal, 'routes.yaml', env).routes[0]!.websocket, false, 'off by default')
})

t.test('a bad websocket bound is named by its path and line', async (t) => {
  t.same(
    problems(`${minimal}    websocket:
      maxMessage: huge
      pingInterval: 0
      compresion: true
  - path: /live
    upstream: http://live:8080
    websocket: yes
  - path: /huge
    upstream: http://huge:8080
    websocket: { maxMessage: 2gb, pingInterval: 30d }
`),
    [
      '13 routes[0].websocket.maxMessage: must be a size like 1mb, 512kb or a number of bytes (got "huge")',
      '14 routes[0].websocket.pingInterval: must be more than 0: pings are how a dead peer is found',
      '15 routes[0].websocket.compresion: unknown option (did you mean compression?)',
      '18 routes[1].websocket: must be true, false or a mapping of maxMessage, compression, pingInterval (got "yes")',
      '21 routes[2].websocket.pingInterval: must be at most 1d',
      '21 routes[2].websocket.maxMessage: must be at most 100mb',
    ],
  )
  t.same(
    problems(
      minimal
        .replace('  secret: ${SESSION_SECRET}', '  secret: ${SESSION_SECRET}\n  maxWebSockets: 0')
        .replace(
          '  publicUrl: https://app.example.com',
          '  publicUrl: https://app.example.com\n  maxWebSockets: -1',
        ),
    ),
    [
      '3 server.maxWebSockets: expected integer to be greater or equal to 1',
      '10 session.maxWebSockets: expected integer to be greater or equal to 1',
    ],
  )
})

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
    '14 routes[0].token: must be one of user, optional-user, client, exchange, none (got "sometimes")',
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

t.test(
  'oidc.dpop: ES256 by default, an algorithm from the list; a session keeps its binding on every route that does not opt out',
  async (t) => {
    const withDpop = minimal.replace('  clientSecret:', '  dpop: true\n  clientSecret:')
    const routes = `  - path: /api/legacy\n    upstream: http://legacy:8080\n    dpop: false\n  - path: /api/public\n    upstream: http://public:8080\n    token: none\n  - path: /api/reports\n    upstream: http://reports:8080\n    token: client\n`
    const config = parseConfig(`${withDpop}${routes}`, 'routes.yaml', env)
    t.equal(config.oidc.dpop, true)
    t.equal(config.oidc.dpopAlgorithm, 'ES256')
    t.same(
      config.routes.map((r) => r.dpop),
      [true, false, false, true],
      'a user route binds; dpop: false opts out; token: none never sends one; the gateway binds its own',
    )
    t.same(
      parseConfig(`${minimal}${routes}`, 'routes.yaml', env).routes.map((r) => r.dpop),
      [true, false, false, false],
      "without oidc.dpop, a user route still proves the key of a session signed in with it; the gateway's own token is unbound",
    )
    t.equal(
      parseConfig(
        withDpop.replace('  dpop: true', '  dpop: true\n  dpopAlgorithm: Ed25519'),
        'routes.yaml',
        env,
      ).oidc.dpopAlgorithm,
      'Ed25519',
    )
    t.same(problems(withDpop.replace('  dpop: true', '  dpop: true\n  dpopAlgorithm: HS256')), [
      '7 oidc.dpopAlgorithm: must be one of ES256, ES384, ES512, PS256, PS384, PS512, RS256, Ed25519, EdDSA (got "HS256")',
    ])
    t.same(problems(`${minimal}    dpop: true\n`), ['12 routes[0].dpop: needs oidc.dpop: true'])
  },
)

t.test('server.drainTimeout past a day is refused: a timer that long would fire at once', async (t) => {
  const text = (drain: string) => `server: { publicUrl: https://app.example.com, drainTimeout: ${drain} }
oidc: { issuer: https://idp.example.com, clientId: a, clientSecret: b }
session: { secret: "${'s'.repeat(32)}" }
routes: []
`
  t.same(configProblems(text('25d'), {}), ['1 server.drainTimeout: must be at most 24h'])
  t.equal(parseConfig(text('24h'), 'routes.yaml', {}).server.drainTimeout, 86_400_000)
})

t.test('tokens.maxSize bounds each token kept: 16 KiB by default, between 1kb and 1mb', async (t) => {
  t.equal(parseConfig(minimal, 'routes.yaml', env).tokens.maxSize, 16 * 1024)
  t.equal(parseConfig(`${minimal}tokens:\n  maxSize: 60kb\n`, 'routes.yaml', env).tokens.maxSize, 60 * 1024)
  t.same(problems(`${minimal}tokens:\n  maxSize: 512b\n`), [
    '13 tokens.maxSize: must be at least 1kb: a signed JWT alone takes most of it',
  ])
  t.same(problems(`${minimal}tokens:\n  maxSize: 2mb\n`), [
    '13 tokens.maxSize: must be at most 1mb: no identity provider answer larger is read',
  ])
  t.same(problems(`${minimal}tokens:\n  maxSize: 512\n`), [
    '13 tokens.maxSize: must be at least 1kb: a signed JWT alone takes most of it',
  ])
})

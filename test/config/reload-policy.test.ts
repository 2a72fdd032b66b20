import { readFileSync } from 'node:fs'
import t from 'tap'
import { linesOf } from '../../src/config/document.js'
import type { ConfigError } from '../../src/config/errors.js'
import { parseConfig } from '../../src/config/load.js'
import { RESTART_SETTINGS, restartNeeded, restartNeededIn } from '../../src/config/reload-policy.js'

const SECRET = 'a-session-secret-of-at-least-32-characters!'

function config(extra = '') {
  return parseConfig(
    `server: { port: 3000, publicUrl: "http://127.0.0.1:3000" }
oidc: { issuer: "http://127.0.0.1:4000", clientId: app, clientSecret: s3cret }
session: { secret: "${SECRET}" }
${extra}
routes:
  - { path: /api, upstream: "http://127.0.0.1:5000" }
`,
    'routes.yaml',
    {},
  )
}

t.test('routes, tokens, log level and secrets change live', async (t) => {
  const running = config()
  const next = parseConfig(
    `server: { port: 3000, publicUrl: "http://127.0.0.1:3000" }
oidc: { issuer: "http://127.0.0.1:4000", clientId: app, clientSecret: s3cret, timeout: 5s }
session: { secrets: ["b-new-session-secret-of-at-least-32-chars", "${SECRET}"] }
tokens: { refreshBefore: 45s }
logging: { level: debug }
routes:
  - { path: /api, upstream: "http://127.0.0.1:5001", timeout: 3s }
  - { path: /new, upstream: "http://127.0.0.1:5002", token: none }
`,
    'routes.yaml',
    {},
  )
  t.same(restartNeeded(running, next), [])
})

t.test('each restart setting is named, with why, and a store URL shows no password', async (t) => {
  const running = config()
  const next = parseConfig(
    `server: { port: 3001, publicUrl: "http://127.0.0.1:3000" }
oidc: { issuer: "http://127.0.0.1:4000", clientId: app, clientSecret: s3cret }
session: { secret: "${SECRET}", store: "redis://:hunter2-password@127.0.0.1:6379" }
metrics: { port: 9999 }
routes:
  - { path: /api, upstream: "http://127.0.0.1:5000" }
`,
    'routes.yaml',
    {},
  )
  const found = restartNeeded(running, next)
  t.same(
    found.map((f) => f.path),
    ['server.port', 'session.store', 'metrics.port'],
  )
  for (const f of found) t.match(f.message, /^cannot change without a restart \(/)
  t.match(found[0]!.message, /3000 is running, the file says 3001/)
  t.notMatch(found[1]!.message, /hunter2/, 'the password stays out of the log')
  t.ok(
    RESTART_SETTINGS.every(([path]) => path.split('.').length <= 2),
    'every path is one the config has',
  )
})

t.test(
  'every setting that needs a restart is named where the README and deployment.md list them',
  async (t) => {
    const read = (doc: string) => readFileSync(new URL(`../../${doc}`, import.meta.url), 'utf8')
    // As a reader finds it: the option in full, its last part within the
    // list of its section, or the whole section.
    const named = (text: string, path: string) => {
      const [section, leaf] = path.split('.')
      return [path, leaf, `${section}.*`].some((form) => form !== undefined && text.includes(`\`${form}\``))
    }
    const readme = read('README.md')
      .split(/\n\s*\n/)
      .find((p) => p.includes('needs a restart') || p.includes('need a restart'))
    const deployment = /\*\*What needs a restart\.\*\*[\s\S]*?(?=\nNot reloaded:)/.exec(
      read('docs/deployment.md'),
    )?.[0]
    t.ok(readme, "the README's reload paragraph")
    t.ok(deployment, "deployment.md's list")
    for (const [path] of RESTART_SETTINGS) {
      t.ok(named(readme ?? '', path), `README.md names ${path}`)
      t.ok(named(deployment ?? '', path), `docs/deployment.md names ${path}`)
    }
  },
)

/** `text`'s problems, as the reload gets them from the check. */
function problemsOf(text: string, env: NodeJS.ProcessEnv = {}) {
  try {
    parseConfig(text, 'routes.yaml', env)
  } catch (err) {
    return (err as ConfigError).problems
  }
  throw new Error('the text passed its check')
}

t.test(
  'a file that fails its check: the restart settings it changes are named too, with their lines',
  async (t) => {
    const running = config()
    const text = `server: { port: 3001, publicUrl: "http://127.0.0.1:3000" }
oidc: { issuer: "http://127.0.0.1:4000", clientId: app, clientSecret: s3cret }
session:
  secret: "${SECRET}"
  store: "redis://:hunter2-password@127.0.0.1:6379"
bogus: 1
routes:
  - { path: /api, upstream: "http://127.0.0.1:5000", token: nope }
`
    const problems = problemsOf(text)
    t.same(
      problems.map((p) => p.path),
      ['bogus', 'routes[0].token'],
    )
    const found = restartNeededIn(running, text, {}, problems)
    t.same(
      found.map((f) => [f.path, f.line]),
      [
        ['server.port', 1],
        ['session.store', 5],
      ],
    )
    t.match(found[0]!.message, /3000 is running, the file says 3001/)
    t.notMatch(found[1]!.message, /hunter2/, 'the password stays out of the log')
  },
)

t.test(
  'a restart setting that is itself wrong, or within or around an option that is, is left to its problem',
  async (t) => {
    const running = config()
    const text = `server: { port: 99999, publicUrl: "http://127.0.0.1:3000", headersTimeout: 11s }
oidc: { issuer: "http://127.0.0.1:4000", clientId: app, clientSecret: s3cret }
session: { secret: "${SECRET}", store: "\${REDIS_URL}", keyPrefix: "a{b}" }
metrics: 5
tracing: { enabled: true, bogus: 1 }
routes:
  - { path: /api, upstream: "http://127.0.0.1:5000" }
`
    const problems = problemsOf(text)
    t.same(
      problems.map((p) => p.path),
      ['server.port', 'session.store', 'session.keyPrefix', 'metrics', 'tracing.bogus'],
    )
    t.same(
      restartNeededIn(running, text, {}, problems).map((f) => f.path),
      ['server.headersTimeout'],
      'only the one the file can be read for',
    )
    t.same(restartNeededIn(running, 'server: [', {}, []), [], 'nothing from text that is not YAML')
    t.same(restartNeededIn(running, '- a list', {}, []), [], 'nor from a document that is not a mapping')
  },
)

t.test('a setting read from a failing file is compared as the loaded config holds it', async (t) => {
  const running = config()
  // Every restart setting changed, each written the way the file may write it.
  const text = `server:
  host: 127.0.0.2
  port: \${PORT}
  publicUrl: "http://127.0.0.1:3000"
  headersTimeout: 9s
  requestTimeout: 61
  keepAliveTimeout: 1m
  maxHeaderSize: 32kb
oidc: { issuer: "http://127.0.0.1:4000", clientId: app, clientSecret: s3cret }
session:
  secret: "${SECRET}"
  store: "redis+sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/main"
  keyPrefix: "other:"
  idleTimeout: 2h
  maxSessions: 7
  localCache: 3
  storeTimeout: 2500ms
metrics: { enabled: false, host: 127.0.0.3, port: 9999 }
tracing: { enabled: true }
routes:
  - { path: /api, upstream: "http://127.0.0.1:5000" }
`
  const env = { PORT: '3002' }
  const loaded = restartNeeded(running, parseConfig(text, 'routes.yaml', env), linesOf(text))
  t.same(
    loaded.map((f) => f.path),
    RESTART_SETTINGS.map(([path]) => path),
    'the file changes every one',
  )
  t.same(restartNeededIn(running, text, env, []), loaded, 'read from the text, the same verdicts')
  const unchanged = `server: { port: 3000, publicUrl: "http://127.0.0.1:3000" }
oidc: { issuer: "http://127.0.0.1:4000", clientId: app, clientSecret: s3cret }
session: { secret: "${SECRET}" }
routes:
  - { path: /api, upstream: "http://127.0.0.1:5000" }
`
  t.same(restartNeededIn(running, unchanged, {}, []), [], 'defaults read as the running defaults')
})

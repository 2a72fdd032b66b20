import { readFileSync } from 'node:fs'
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { RESTART_SETTINGS, restartNeeded } from '../../src/config/reload-policy.js'

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

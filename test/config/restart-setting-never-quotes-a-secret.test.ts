/*
 * A reload that changes a setting only a restart can change is refused
 * with both values quoted: "… is running, the file says …". Every other
 * config problem cuts out what a secret's variable put in; this message
 * quoted it whole, to the log of a refused reload: a Redis password in the
 * user name slot of a store URL (`redis://${REDIS_PASSWORD}@host`, the
 * colon forgotten, which the store's display keeps), a key prefix built
 * from a token.
 */
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { restartNeededIn } from '../../src/config/reload-policy.js'
import { checkReload } from '../../src/server/reload-check.js'
import { CONFIG_ENV, configHead } from '../helpers/config-problems.js'

const PASSWORD = 'Hunter2-redis-password-of-the-store'
const TOKEN = 'tenant-Token-that-is-a-secret'
const env = { ...CONFIG_ENV, REDIS_PASSWORD: PASSWORD, TENANT_TOKEN: TOKEN }

const routes = `routes:
  - path: /api/orders
    upstream: http://orders:8080
`
/** A valid config whose `session:` holds its secret and `session` besides. */
const configWith = (session: string) => `${configHead(`secret: \${SESSION_SECRET}\n  ${session}`)}${routes}`

/** What a reload from `running` to `next` refuses, as the log gets it. */
function refused(running: string, next: string): string {
  const check = checkReload({
    bytes: Buffer.from(next),
    file: 'routes.yaml',
    env,
    running: parseConfig(running, 'routes.yaml', env),
  })
  return (check.result === 'valid' ? check.restart : check.problems).map((p) => p.message).join('\n')
}

const inUserName = configWith('store: redis://${REDIS_PASSWORD}@127.0.0.1:6379')

t.test('a secret in a restart setting is not quoted, running or in the file', async (t) => {
  const cases: [string, string, string, RegExp][] = [
    [
      'the password moved to its own slot: the running URL quoted it',
      inUserName,
      configWith('store: redis://:${REDIS_PASSWORD}@127.0.0.1:6380'),
      /redis:\/\/\[redacted: the value of REDIS_PASSWORD\]@127\.0\.0\.1:6379/,
    ],
    [
      'the store given up for memory: only the running URL held it',
      inUserName,
      configWith('store: memory'),
      /\[redacted: the value of REDIS_PASSWORD\]@127\.0\.0\.1:6379.* is running, the file says "memory"/,
    ],
    [
      'a key prefix from a token: the file quoted it',
      configWith('keyPrefix: "app:"'),
      configWith('keyPrefix: "${TENANT_TOKEN}:"'),
      /the file says "\[redacted: the value of TENANT_TOKEN\]:"/,
    ],
    [
      'the same in a file that fails its check',
      inUserName,
      `${configWith('store: redis://:${REDIS_PASSWORD}@127.0.0.1:6380')}bogus: 1\n`,
      /\[redacted: the value of REDIS_PASSWORD\]@127\.0\.0\.1:6379/,
    ],
  ]
  for (const [name, running, next, shown] of cases) {
    const message = refused(running, next)
    t.match(message, /cannot change without a restart/, name)
    t.match(message, shown, `${name}: the variable is named instead`)
    t.notMatch(message, /Hunter2|Token/, `${name}: no part of the secret`)
  }
})

t.test('read from a failing file, the same', async (t) => {
  const running = parseConfig(configWith('keyPrefix: "app:"'), 'routes.yaml', env)
  const text = `${configWith('keyPrefix: "${TENANT_TOKEN}:"')}bogus: 1\n`
  const [found] = restartNeededIn(running, text, env, [
    { path: 'bogus', line: 13, message: 'is not an option' },
  ])
  t.match(found, { path: 'session.keyPrefix' })
  t.notMatch(found?.message, /Token/)
})

t.test('what a running secret option holds is not quoted, whatever variable put it in', async (t) => {
  // One variable, not named like a secret, fed the session's secret and the key prefix.
  const seal = { APP_SEAL: 'Seal-of-the-session-at-least-32-characters' }
  const text = (prefix: string) => `${configHead(`secret: \${APP_SEAL}\n  keyPrefix: "${prefix}"`)}${routes}`
  const check = checkReload({
    bytes: Buffer.from(text('app:')),
    file: 'routes.yaml',
    env: { ...CONFIG_ENV, ...seal },
    running: parseConfig(text('${APP_SEAL}:'), 'routes.yaml', { ...CONFIG_ENV, ...seal }),
  })
  const message = check.result === 'valid' ? check.restart.map((p) => p.message).join('\n') : ''
  t.match(message, /"\[redacted: the value of APP_SEAL\]:" is running, the file says "app:"/)
  t.notMatch(message, /Seal/)
})

t.test('a value no secret put in is still quoted: it is what to fix', async (t) => {
  const message = refused(configWith('keyPrefix: "app:"'), configWith('keyPrefix: "other:"'))
  t.match(message, /"app:" is running, the file says "other:"/)
})

import { readFileSync } from 'node:fs'
import t from 'tap'
import { DEFAULT_KEY_PREFIX, REDIS_KEY_LAYOUT, redisKeys, sessionNamespace } from '../../src/redis/keys.js'

t.test("REDIS_KEY_LAYOUT names every key in the README's key table, and no other", async (t) => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const table = readme.slice(readme.indexOf('| Key | Type | Holds | Expires |'))
  const rows = table.slice(0, table.indexOf('\n\n')).split('\n').slice(2)
  const documented = rows.map((row) => /^\| `([^`]+)`/.exec(row)?.[1])
  t.ok(documented.length >= 9, 'the table was found')
  t.same(
    Object.values(REDIS_KEY_LAYOUT)
      .map((entry) => entry.key)
      .sort(),
    documented.sort(),
  )
})

t.test('every key the stores build is the one the layout documents', async (t) => {
  const prefix = 'app:'
  const keys = redisKeys(prefix)
  /** A layout key with its placeholders filled in. */
  const documented = (entry: keyof typeof REDIS_KEY_LAYOUT, values: Record<string, string> = {}) => {
    let key: string = REDIS_KEY_LAYOUT[entry].key.replace('{prefix}', prefix).replace('…', '')
    for (const [placeholder, value] of Object.entries(values)) key = key.replace(placeholder, value)
    return key
  }
  const built: Record<Exclude<keyof typeof REDIS_KEY_LAYOUT, 'invalidations'>, [string, string]> = {
    session: [keys.session('S1'), documented('session', { '<id>': 'S1' })],
    // Sessions builds a named frontend's ids; the store names their keys as any other.
    frontendSession: [
      keys.session(`${sessionNamespace('staff')}S1`),
      documented('frontendSession', { '<frontend>': 'staff', '<id>': 'S1' }),
    ],
    bySub: [keys.index('sub', 'H1'), documented('bySub', { '<HMAC(sub)>': 'H1' })],
    bySid: [keys.index('sid', 'H2'), documented('bySid', { '<HMAC(sid)>': 'H2' })],
    bySubOfProvider: [
      keys.index('sub', 'H1', 'corp'),
      documented('bySubOfProvider', { '<name>': 'corp', '<HMAC(sub)>': 'H1' }),
    ],
    bySidOfProvider: [
      keys.index('sid', 'H2', 'corp'),
      documented('bySidOfProvider', { '<name>': 'corp', '<HMAC(sid)>': 'H2' }),
    ],
    lock: [keys.lock('refresh:S1'), documented('lock', { '<key>': 'refresh:S1' })],
    loggedOutSid: [keys.loggedOutSid('H3'), documented('loggedOutSid', { '<hash>': 'H3' })],
    loggedOutSub: [keys.loggedOutSub('H3'), documented('loggedOutSub', { '<hash>': 'H3' })],
    clientToken: [keys.clientToken('api read'), documented('clientToken', { '<scopes>': 'api read' })],
    // The back-channel logout receiver names what it has seen `logout:<hash>`.
    seenLogoutToken: [keys.seen('logout:H3'), documented('seenLogoutToken', { '<hash>': 'H3' })],
    replaced: [keys.replaced('S1'), documented('replaced', { '<id>': 'S1' })],
    retryCooldown: [keys.retryCooldown('C1'), documented('retryCooldown', { '<hash>': 'C1' })],
    rateLimit: [keys.rateLimit, documented('rateLimit')],
    lockReleased: [keys.lockReleased, documented('lockReleased')],
    writeProbe: [keys.writeProbe('7'), documented('writeProbe', { '<n>': '7' })],
  }
  for (const [entry, [key, expected]] of Object.entries(built)) t.equal(key, expected, entry)
  t.same(
    Object.keys(built).sort(),
    Object.keys(REDIS_KEY_LAYOUT)
      .filter((entry) => entry !== 'invalidations')
      .sort(),
    'a builder for every key of ours (Redis names the invalidation channel)',
  )
  t.equal(keys.session('S1').startsWith(keys.sessions), true, 'the local cache tracks every session key')
  t.match(REDIS_KEY_LAYOUT.invalidations.expires, `PREFIX {prefix}${keys.sessions.slice(prefix.length)},`)
  t.equal(redisKeys().lock('x'), `${DEFAULT_KEY_PREFIX}lock:{x}`, 'the default prefix')
})

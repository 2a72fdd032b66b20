import { Redis } from 'ioredis'
import t from 'tap'
import { ConfigError } from '../../src/config/errors.js'
import { parseConfig } from '../../src/config/load.js'
import { parseStore } from '../../src/config/store-url.js'

const env = { SECRET: 'x'.repeat(32) }

function withStore(store: string, extra = ''): string {
  return `server:
  publicUrl: https://app.example.com
oidc:
  issuer: https://idp.example.com
  clientId: my-bff
  clientSecret: s
session:
  secret: \${SECRET}
  store: "${store}"${extra}
routes:
  - path: /api/orders
    upstream: http://orders:8080
`
}

t.test('memory and single-Redis URLs keep working', async (t) => {
  t.same(parseStore('memory'), { kind: 'memory', display: 'memory' })
  t.same(parseStore('redis://10.0.0.1:6379/2'), {
    kind: 'redis',
    url: 'redis://10.0.0.1:6379/2',
    display: 'redis://10.0.0.1:6379/2',
  })
  t.match(parseStore('rediss://:pw@redis.example.com:6380'), {
    kind: 'redis',
    display: 'rediss://:***@redis.example.com:6380',
  })
})

t.test('redis+sentinel:// lists the sentinels, names the master, and may pick a db', async (t) => {
  t.same(parseStore('redis+sentinel://s1:26379,s2:26380,10.0.0.3:26381/mymaster/3'), {
    kind: 'sentinel',
    sentinels: [
      { host: 's1', port: 26379 },
      { host: 's2', port: 26380 },
      { host: '10.0.0.3', port: 26381 },
    ],
    name: 'mymaster',
    db: 3,
    tls: false,
    display: 'redis+sentinel://s1:26379,s2:26380,10.0.0.3:26381/mymaster/3',
  })
  t.match(parseStore('rediss+sentinel://app:p%40ss@[::1]:26379/main'), {
    kind: 'sentinel',
    sentinels: [{ host: '::1', port: 26379 }],
    name: 'main',
    db: 0,
    tls: true,
    username: 'app',
    password: 'p@ss',
    display: 'rediss+sentinel://app:***@[::1]:26379/main',
  })
})

t.test('redis+cluster:// lists seed nodes, with credentials and TLS', async (t) => {
  t.same(parseStore('redis+cluster://a:7000,b:7001'), {
    kind: 'cluster',
    nodes: [
      { host: 'a', port: 7000 },
      { host: 'b', port: 7001 },
    ],
    tls: false,
    display: 'redis+cluster://a:7000,b:7001',
  })
  t.match(parseStore('rediss+cluster://:secret@c.example.com:6379'), {
    kind: 'cluster',
    tls: true,
    password: 'secret',
    display: 'rediss+cluster://:***@c.example.com:6379',
  })
})

t.test('malformed forms say what is wrong', async (t) => {
  for (const value of ['redis://:p%zz@h:6379', 'rediss://u%ZZ:pw@h:6380']) {
    t.equal(
      parseStore(value),
      'has credentials that are not valid percent-encoding',
      `${value}: not at connect time`,
    )
  }
  t.match(parseStore('redis+sentinel://s1:26379'), /needs the master name/)
  t.match(parseStore('redis+sentinel://s1:26379/m/x'), /database "x"/)
  t.match(parseStore('redis+sentinel://s1/m'), /invalid host:port "s1"/)
  t.match(parseStore('redis+cluster://a:7000,b:99999'), /invalid host:port "b:99999"/)
  t.match(parseStore('redis+cluster://a:7000/0'), /no databases/)
  t.match(parseStore('redis+cluser://a:7000'), /not a valid redis\+cluser:\/\/ URL/)
  t.match(parseStore('postgres://db'), /must be memory, or a redis:\/\//)
})

t.test('a password written with a raw @ or / is the password, and no problem ever quotes it', async (t) => {
  t.match(parseStore('redis+sentinel://:S3cr@tPassw0rd@h:26379/m'), {
    kind: 'sentinel',
    password: 'S3cr@tPassw0rd',
    sentinels: [{ host: 'h', port: 26379 }],
    display: 'redis+sentinel://:***@h:26379/m',
  })
  t.match(parseStore('rediss+cluster://u:p/assword@h:1'), {
    kind: 'cluster',
    username: 'u',
    password: 'p/assword',
    nodes: [{ host: 'h', port: 1 }],
  })
  for (const value of [
    'redis+sentinel://:S3cr@tPassw0rd@h:99999/m',
    'redis+sentinel://:S3cr@tPassw0rd@h/m',
    'rediss+sentinel://u:p/assword@/m',
    'redis+cluster://:pa ss@word@h:1/0',
  ]) {
    const problem = parseStore(value)
    t.type(problem, 'string', value)
    t.notMatch(problem, /S3cr|tPassw0rd|assword|pa ss|word/, `${problem}: no part of the password`)
  }
})

t.test('a redis:// password with a raw #, / or ? is refused, and never quoted', async (t) => {
  // redis: is not a special scheme: WHATWG URL ends its authority at the
  // first /, ? or #, so these once parsed as host "default" with the whole
  // string, password included, in `display`.
  for (const scheme of ['redis', 'rediss']) {
    for (const value of [
      `${scheme}://default:123#SECRETPART@redis:6379`,
      `${scheme}://default:6379/SECRETPART@redis:6379`,
      `${scheme}://default:6379?SECRETPART@redis:6379`,
      `${scheme}://:123#SECRETPART@redis:6379/0`,
      `${scheme}://default:S3cr@t/SECRETPART@redis:6379`,
      `${scheme}://default:123#SECRETPART@redis:6379/0?family=4#x`,
    ]) {
      const problem = parseStore(value)
      t.type(problem, 'string', value)
      t.match(problem, /percent-encode the password/, value)
      t.notMatch(problem, /123|6379|SECRETPART|S3cr|default/, `${problem}: no part of the password`)
    }
  }
  try {
    parseConfig(withStore('redis://default:123#SECRETPART@redis:6379'), 'routes.yaml', env)
    t.fail('expected a ConfigError')
  } catch (err) {
    t.type(err, ConfigError)
    t.notMatch((err as ConfigError).message, /SECRETPART/)
    t.notMatch(JSON.stringify((err as ConfigError).problems), /SECRETPART/)
  }
})

t.test(
  'a redis:// password, percent-encoded or with a raw @, reaches ioredis whole and is never displayed',
  async (t) => {
    for (const [value, username, password, host, port] of [
      ['redis://default:123%23SECRETPART@redis:6379', 'default', '123#SECRETPART', 'redis', 6379],
      ['rediss://default:6379%2FSECRETPART@redis:6380/2', 'default', '6379/SECRETPART', 'redis', 6380],
      ['redis://:6379%3FSECRETPART@10.0.0.1:6379', '', '6379?SECRETPART', '10.0.0.1', 6379],
      ['redis://:S3cr@tSECRETPART@redis:6379', '', 'S3cr@tSECRETPART', 'redis', 6379],
      ['redis://:S3cr%40t%2F%3F%23SECRETPART@[::1]:6379', '', 'S3cr@t/?#SECRETPART', '::1', 6379],
    ] as const) {
      const store = parseStore(value)
      if (typeof store === 'string' || store.kind !== 'redis') {
        t.fail(`${value}: ${JSON.stringify(store)}`)
        continue
      }
      t.notMatch(
        store.display,
        /SECRETPART|S3cr|%23|%2F|%3F|%40/,
        `${store.display}: no part of the password`,
      )
      t.match(store.display, `:***@`, value)
      // The connection code hands `url` to ioredis as written: what it will
      // dial and authenticate with is what its own parser reads.
      const redis = new Redis(store.url, { lazyConnect: true })
      t.match(
        redis.options,
        { host, port, password, ...(username ? { username } : {}) },
        `${value}: ioredis reads the same host, port and password`,
      )
      t.ok(
        store.display.includes(host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`),
        store.display,
      )
      redis.disconnect()
    }
  },
)

t.test('a credential ioredis reads from the query string is never displayed', async (t) => {
  // ioredis takes every query parameter as an option (utils parseURL), a
  // password included, after the userinfo's; the key is percent-decoded first.
  for (const [value, display, options] of [
    [
      'redis://127.0.0.1:6379/0?password=SECRETPART',
      'redis://127.0.0.1:6379/0?password=***',
      { host: '127.0.0.1', port: 6379, db: 0, password: 'SECRETPART' },
    ],
    [
      'rediss://redis:6380/2?username=app&password=SECRETPART&family=6',
      'rediss://redis:6380/2?username=app&password=***&family=6',
      { username: 'app', password: 'SECRETPART', family: 6, db: 2 },
    ],
    [
      'redis://redis:6379?pass%77ord=SECRETPART',
      'redis://redis:6379?password=***',
      { password: 'SECRETPART' },
    ],
    [
      'redis://redis:6379?password=S3CRETPART&password=SECRETPART',
      'redis://redis:6379?password=***',
      { password: 'SECRETPART' },
    ],
    [
      'redis://redis:6379?sentinelPassword=SECRETPART&sentinelUsername=watch',
      'redis://redis:6379?sentinelPassword=***&sentinelUsername=watch',
      { sentinelPassword: 'SECRETPART' },
    ],
    [
      'redis://:SECRETPART@redis:6379/1?password=S3CRETPART',
      'redis://:***@redis:6379/1?password=***',
      { password: 'SECRETPART' },
    ],
    // A raw # in a query password ends the query: ioredis ignores the
    // fragment (and fails to authenticate), but the rest of the password is there.
    [
      'redis://redis:6379/0?password=SECRET#PART',
      'redis://redis:6379/0?password=***#***',
      { password: 'SECRET' },
    ],
  ] as const) {
    const store = parseStore(value)
    if (typeof store === 'string' || store.kind !== 'redis') {
      t.fail(`${value}: ${JSON.stringify(store)}`)
      continue
    }
    t.equal(store.display, display, value)
    t.notMatch(store.display, /SECRET|S3CRET|PART/, `${store.display}: no part of a password`)
    const redis = new Redis(store.url, { lazyConnect: true })
    t.match(redis.options, options, `${value}: what ioredis authenticates with`)
    redis.disconnect()
  }
})

t.test('the loader resolves the form once, and names the field and line of a bad one', async (t) => {
  const config = parseConfig(withStore('redis+cluster://127.0.0.1:7000,127.0.0.1:7001'), 'routes.yaml', env)
  t.equal(config.session.store.kind, 'cluster')
  t.ok(Object.isFrozen(config.session.store), 'frozen with the rest')
  try {
    parseConfig(withStore('redis+sentinel://s1:26379', '\n  keyPrefix: "app{1}:"'), 'routes.yaml', env)
    t.fail('expected a ConfigError')
  } catch (err) {
    t.type(err, ConfigError)
    t.same(
      (err as ConfigError).problems.map((p) => `${p.line} ${p.path}: ${p.message}`),
      [
        '9 session.store: needs the master name: redis+sentinel://host:port[,host:port…]/master[/db]',
        '10 session.keyPrefix: must not contain { or }',
      ],
    )
  }
})

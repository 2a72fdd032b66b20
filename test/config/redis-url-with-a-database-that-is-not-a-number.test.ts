import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { problemsOrNone } from '../helpers/config-problems.js'

/*
 * redis+sentinel:// refused a database that is not a number, but redis://
 * and rediss:// handed theirs to ioredis as written: `redis://redis:6379/x`
 * (or `/0/app`, or `?db=x`) passed `gatehouse check`, and ioredis then sent
 * `SELECT NaN` and the start failed with "ERR value is not an integer or out
 * of range", naming neither session.store nor its line.
 */
const env = { SESSION_SECRET: 'x'.repeat(32) }
const withStore = (store: string) => `server: { publicUrl: https://app.example.com }
oidc: { issuer: https://idp.example.com, clientId: a, clientSecret: s }
session:
  secret: \${SESSION_SECRET}
  store: ${JSON.stringify(store)}
routes:
  - { path: /api, upstream: "http://api:8080" }
`

const problems = (text: string) => problemsOrNone(text, env)

t.test('a redis:// database that is not a number is refused at session.store, as for sentinel', async (t) => {
  const cases: [string, string][] = [
    ['redis://redis:6379/x', 'x'],
    ['rediss://redis:6380/0/app', '0/app'],
    ['redis://redis:6379/-1', '-1'],
    ['redis://:p%40ss@redis:6379/app?family=4', 'app'],
    ['redis://redis:6379?db=x', 'x'],
    ['redis://redis:6379/?db=', ''],
  ]
  for (const [store, db] of cases)
    t.same(
      problems(withStore(store)),
      [`5 session.store: has a database "${db}" that is not a number`],
      store,
    )
})

t.test('a database number, or none, is taken', async (t) => {
  for (const store of [
    'redis://redis:6379',
    'redis://redis:6379/',
    'redis://redis:6379/15',
    'rediss://:p%40ss@redis:6380/2?family=6',
    'redis://redis:6379?db=3',
  ])
    t.doesNotThrow(() => parseConfig(withStore(store), 'routes.yaml', env), store)
})

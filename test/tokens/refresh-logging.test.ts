import t from 'tap'
import { sessionLogId } from '../../src/session/log-id.js'
import { sessionRefOf } from '../helpers/app.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

interface LogLine {
  level: number
  msg: string
  session?: string
}

t.test('each refresh and each invalid_grant is logged at info with the short session id only', async (t) => {
  const lines: string[] = []
  const clock = new TestClock()
  const stack = await startStack(t, {
    accessTokenTtl: 60,
    config: { logLevel: 'info' },
    gateway: { now: clock.now, logStream: { write: (line: string) => void lines.push(line) } },
  })
  const url = `${stack.gateway.url}/api/orders`
  const { jar } = await login(stack.gateway.url)
  const store = stack.gateway.app.gatehouse.stores.sessions
  const ref = sessionRefOf(stack.gateway.app, jar.get(stack.gateway.url, 'gatehouse')!)
  const { id } = ref
  const refreshLines = () =>
    lines.map((l) => JSON.parse(l) as LogLine).filter((l) => l.msg.includes('refresh'))

  t.equal((await apiCall(jar, url)).status, 200)
  t.same(refreshLines(), [], 'a fresh token: nothing to log')

  clock.advance(61_000)
  t.equal((await apiCall(jar, url)).status, 200)
  const refreshed = (await store.get(ref, clock.now()))!
  t.match(refreshLines(), [{ level: 30, msg: 'access token refreshed', session: sessionLogId(id) }])

  await stack.gateway.app.gatehouse.oidc.revoke(refreshed.tokens.refreshToken!)
  clock.advance(61_000)
  t.equal((await apiCall(jar, url)).status, 401)
  t.match(refreshLines(), [
    { msg: 'access token refreshed' },
    { level: 30, msg: 'refresh token refused (invalid_grant): session ended', session: sessionLogId(id) },
  ])

  const log = lines.join('')
  for (const secret of [id, refreshed.tokens.accessToken, refreshed.tokens.refreshToken!]) {
    t.notOk(log.includes(secret), `not logged: ${secret.slice(0, 4)}…`)
  }
})

t.test('the short session id is stable, short, and not a prefix of the id', async (t) => {
  const id = 'A'.repeat(43)
  t.equal(sessionLogId(id), sessionLogId(id))
  t.equal(sessionLogId(id).length, 10)
  t.not(sessionLogId(id), sessionLogId(`${id}B`))
  t.notOk(id.startsWith(sessionLogId(id)))
})

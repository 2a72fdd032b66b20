import t from 'tap'
import { sessionRefOf } from '../helpers/app.js'
import { CLIENT_SECRET, SESSION_SECRET, TestClock } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

t.test('a full session at debug level logs no token, code, cookie, secret or session id', async (t) => {
  const lines: string[] = []
  const clock = new TestClock()
  const stack = await startStack(t, {
    // Debug everything, access log on: the test is only meaningful if the chattiest setup is clean.
    config: { logLevel: 'debug', accessLog: true },
    gateway: { now: clock.now, logStream: { write: (line: string) => void lines.push(line) } },
  })
  const base = stack.gateway.url

  const { jar, callback, callbackUrl } = await login(base)
  const secrets = new Set<string>([CLIENT_SECRET, SESSION_SECRET])
  const params = new URL(callbackUrl).searchParams
  secrets.add(params.get('code')!)
  secrets.add(params.get('state')!)
  const cookie = jar.get(base, 'gatehouse')!
  secrets.add(cookie)
  t.equal(callback.status, 302)

  await apiCall(jar, `${base}/api/orders`, { headers: { authorization: 'Bearer client-sent-token-xyz' } })
  secrets.add('client-sent-token-xyz')
  clock.advance(61_000)
  await apiCall(jar, `${base}/api/orders`)
  await apiCall(jar, `${base}/api/reports`)
  const store = stack.gateway.app.gatehouse.stores.sessions
  const session = (await store.get(
    sessionRefOf(stack.gateway.app, jar.get(base, 'gatehouse')!),
    clock.now(),
  ))!
  for (const value of [
    session.id,
    session.key.toCookie(),
    session.logoutHandle,
    session.tokens.accessToken,
    session.tokens.refreshToken!,
    session.tokens.idToken!,
  ]) {
    secrets.add(value)
  }
  for (const r of stack.upstream.requests) if (r.authorization) secrets.add(r.authorization.slice(7))
  const { logoutUrl } = (await apiCall(jar, `${base}/auth/user`)).json<{ logoutUrl: string }>()
  await jarFetch(jar, `${base}${logoutUrl}`)
  // A cookie that does not open: the sealing's debug line, which must not
  // quote it. Cookies are opened only when read, so this is the flow's one
  // certain debug line.
  const forged = `${cookie.slice(0, 8)}${cookie[8] === 'A' ? 'B' : 'A'}${cookie.slice(9)}`
  secrets.add(forged)
  const refused = await fetch(`${base}/auth/user`, {
    headers: { cookie: `gatehouse=${forged}`, 'x-csrf': '1' },
  })
  t.equal(refused.status, 401, 'a forged cookie is no session')

  const log = lines.join('')
  t.ok(lines.length > 10, `${lines.length} log lines captured`)
  t.match(log, /"level":20/, 'debug lines were written')
  for (const secret of secrets) t.notOk(log.includes(secret), `not logged: ${secret.slice(0, 4)}…`)
  t.notMatch(log, /code=/, 'no query string with a code')
})

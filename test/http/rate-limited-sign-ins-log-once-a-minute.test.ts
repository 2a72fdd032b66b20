import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { jarFetch } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'

// Past auth.rateLimit each further sign-in attempt still wrote its own
// `login refused` line: the limit spared the IdP, not the disk.
t.test('sign-ins past the rate limit write one line a minute per route, not one each', async (t) => {
  const stack = await startObservedStack(t, { config: { rateLimitMax: 2 } })
  const attempt = (path: string) => jarFetch(new CookieJar(), `${stack.gateway.url}/auth/${path}`)
  const limited = (msg: string) =>
    stack.lines.filter((line) => line.msg === msg && line.code === 'GATEHOUSE_ERR_RATE_LIMITED')

  const logins = await Promise.all(Array.from({ length: 200 }, () => attempt('login')))
  t.equal(logins.filter((r) => r.status === 429).length, 198, 'the limit holds')
  t.equal(limited('login refused').length, 1, 'one line for 198 refusals')
  t.notOk('repeated' in limited('login refused')[0]!)

  const callbacks = await Promise.all(Array.from({ length: 50 }, () => attempt('callback?code=x&state=y')))
  t.equal(callbacks.filter((r) => r.status === 429).length, 48)
  t.equal(limited('login callback refused').length, 1, 'the callback has one line of its own')
  t.equal(
    stack.lines.filter((line) => line.code === 'GATEHOUSE_ERR_LOGIN_FAILED').length,
    2,
    'the refusals within the limit are each still logged',
  )
})

import t from 'tap'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { configText, startReloadable } from '../helpers/reloadable.js'

/**
 * A session whose refreshes find the IdP unavailable waits out the
 * Retry-After it was given, and ends once tokens.unavailableLimit has
 * passed since its first failure. Both were kept with the token parts, which
 * a reload that changes tokens.* replaces: a reload mid-outage started the
 * count again, and the back-off with it.
 */
t.test('a reload that replaces the token parts keeps a failing session’s count and back-off', async (t) => {
  const clock = new TestClock().freeze()
  const stack = await startReloadable(t, (upstream) => [route('/api', upstream)], {
    now: clock.now,
    input: { unavailableLimit: 3_000 },
  })
  const { jar } = await login(stack.url)
  clock.advance(61_000)
  stack.idp.setDown('503')
  t.equal((await apiCall(jar, `${stack.url}/api/x`)).status, 503, 'the first failed refresh')

  clock.advance(2_000)
  stack.configMap.write(configText({ ...stack.input, unavailableLimit: 3_000, refreshWait: 4_000 }))
  t.match(await stack.running.reload(), { result: 'applied' })
  const requests = stack.idp.stats.tokenRequests
  t.equal((await apiCall(jar, `${stack.url}/api/x`)).status, 503)
  t.equal(stack.idp.stats.tokenRequests, requests, 'still within its Retry-After: the IdP is not asked')

  clock.advance(4_000)
  const ended = await apiCall(jar, `${stack.url}/api/x`)
  t.equal(ended.status, 401, 'past the limit, counted from the first failure, before the reload')
  t.equal(ended.json().error, 'session_expired')
})

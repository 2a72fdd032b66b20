import t from 'tap'
import { apiCall, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'

/*
 * The memory store holds at most session.maxSessions sessions and evicts
 * the least recently used past it: a bound, so that sign-ins (anyone's with
 * an account at the IdP) cannot grow the process without end. Hitting it
 * signs a user out, and until now nothing said so: the user met a 401 and
 * the operator found no line and no figure telling them the bound was too
 * small. Each live session evicted is now told by a warning, once a minute
 * with how many more were evicted since.
 */
t.test('a live session evicted for room past session.maxSessions is a warning, once a minute', async (t) => {
  const stack = await startObservedStack(t, { config: { maxSessions: 2 } })
  const base = stack.gateway.url
  const evicted = () => stack.lines.filter((l) => l.code === 'GATEHOUSE_SESSION_EVICTED')
  const first = await login(base, { user: 'alice' })
  await login(base, { user: 'bob' })
  t.equal(evicted().length, 0, 'within the bound, nothing said')
  await login(base, { user: 'carol' })
  await login(base, { user: 'dave' })
  t.equal((await apiCall(first.jar, `${base}/api/orders`)).status, 401, 'the least recent session is gone')
  t.equal(evicted().length, 1, 'two evictions in a minute: one line')
  t.match(evicted()[0], { level: 40, maxSessions: 2 })
  t.notMatch(JSON.stringify(evicted()), /alice|session"/, 'no session id or user named')
})

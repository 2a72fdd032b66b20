import t from 'tap'
import { login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

// Peers that seal tokens into cookies split them into chunks near the
// browser's 4 KB limit; ours carries only the session id.
t.test('the session cookie stays under 200 bytes, whatever the tokens weigh', async (t) => {
  const stack = await startStack(t)
  const { jar, callback } = await login(stack.gateway.url, {
    user: 'a-user-with-a-rather-long-name@example.com',
  })
  t.equal(callback.status, 302)
  const value = jar.get(stack.gateway.url, 'gatehouse')!
  const sent = `gatehouse=${value}`
  t.ok(sent.length <= 200, `Cookie: ${sent.length} bytes`)
  // With https the name gains `__Host-Http-`: still under the limit.
  t.ok(sent.length + '__Host-Http-'.length <= 200)
  const session = (await stack.gateway.app.gatehouse.stores.sessions.idsBySub(
    'a-user-with-a-rather-long-name@example.com',
  ))!
  t.equal(session.length, 1, 'the tokens live on the server')
})

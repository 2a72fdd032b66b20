import t from 'tap'
import { login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'

/*
 * An outage answers every request alike, so its warning is written once a
 * minute per code and cause. The cause was the IdP's whole reason, its
 * error_description included, and an IdP that puts a trace id and a
 * timestamp in every description (Microsoft Entra ID does) made each a
 * cause of its own: a warning per request for as long as it throttled.
 */
t.test('an IdP throttling sign-ins with a trace id in every answer is one warning a minute', async (t) => {
  const stack = await startObservedStack(t)
  const outage = () => stack.lines.filter((l) => l.code === 'GATEHOUSE_ERR_IDP_UNAVAILABLE' && l.level === 40)
  for (let i = 0; i < 4; i++) {
    stack.idp.answer('token', {
      grantType: 'authorization_code',
      status: 429,
      body: { error: 'temporarily_unavailable', error_description: `Try again later. Trace ID: ${i}` },
    })
    const { callback } = await login(stack.gateway.url)
    t.equal(callback.status, 503, `sign-in ${i} meets the outage`)
  }
  t.equal(outage().length, 1, 'one warning for four sign-ins')
  t.match(outage()[0], {
    operation: 'code_exchange',
    status: 429,
    oauthError: 'temporarily_unavailable',
    oauthErrorDescription: 'Try again later. Trace ID: 0',
  })
})

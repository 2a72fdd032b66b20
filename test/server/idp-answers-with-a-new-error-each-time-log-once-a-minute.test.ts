import t from 'tap'
import { login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'

/*
 * An outage's warning is written once a minute per code and cause. The
 * cause held the IdP's own words: its OAuth `error`, as it sent it, and
 * its status. An IdP semi-trusted at best (hostile, or broken into
 * answering an error of its own per call, a request id in the code) made
 * each answer a cause of its own, so a warning per request for as long as
 * it failed, and once a minute no longer bounded what a client's requests
 * write to the log. The cause is now what the gateway made of the answer:
 * the call and its kind (server_error, retry_later, …), a bounded set.
 */
t.test(
  'an IdP failing with a new error code or status in every answer is one warning a minute per kind',
  async (t) => {
    const stack = await startObservedStack(t)
    const outage = () =>
      stack.lines.filter((l) => l.code === 'GATEHOUSE_ERR_IDP_UNAVAILABLE' && l.level === 40)
    // A status of its own in each 5xx (whose body is not read), and a code of its own in each 429,
    // with and without a description: each took its own way into the key.
    const answers = [
      { status: 500 },
      { status: 429, body: { error: 'slow_down_1' } },
      { status: 503 },
      { status: 429, body: { error: 'slow_down_3', error_description: 'busy' } },
      { status: 599 },
      { status: 408, body: { error: 'slow_down_5' } },
    ]
    for (const [i, answer] of answers.entries()) {
      stack.idp.answer('token', { grantType: 'authorization_code', body: {}, ...answer })
      const { callback } = await login(stack.gateway.url)
      t.equal(callback.status, 503, `sign-in ${i} meets the outage`)
    }
    t.match(
      outage(),
      [
        { operation: 'code_exchange', status: 500, reason: 'HTTP 500' },
        { operation: 'code_exchange', status: 429, oauthError: 'slow_down_1' },
      ],
      'six sign-ins, two warnings: the 5xx, and the IdP asking to retry later',
    )
    t.equal(outage().length, 2, 'no warning per status or code')
  },
)

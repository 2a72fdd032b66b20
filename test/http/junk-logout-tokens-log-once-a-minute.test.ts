import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { jarFetch } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'

// The back-channel logout endpoint is open to anyone: each junk token
// posted there wrote a warning, so a client at line rate filled the disk.
t.test(
  'a flood of junk logout tokens writes one warning per reason a minute, then says how many it held back',
  async (t) => {
    const stack = await startObservedStack(t, { backchannelLogout: true })
    const post = (body: Record<string, string>) =>
      jarFetch(new CookieJar(), `${stack.gateway.url}/auth/backchannel-logout`, {
        method: 'POST',
        body: new URLSearchParams(body),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      })
    const refused = () => stack.lines.filter((line) => line.msg === 'logout token refused')

    const answers = await Promise.all(Array.from({ length: 200 }, () => post({ logout_token: 'junk' })))
    t.same(new Set(answers.map((a) => a.status)), new Set([400]), 'every one is still refused')
    t.equal(refused().length, 1, 'one warning for 200 junk tokens')
    t.match(refused()[0], { level: 40, reason: 'The logout token is not valid: not a JWT.' })
    t.notOk('repeated' in refused()[0]!, 'the first says nothing was held back')

    t.equal((await post({})).status, 400)
    t.match(refused().at(-1), { reason: 'logout_token is missing.' }, 'another reason has a line of its own')
    t.equal(refused().length, 2)

    stack.clock.advance(60_000)
    t.equal((await post({ logout_token: 'junk' })).status, 400)
    t.equal(refused().length, 3, 'a minute later the reason is written again')
    t.match(refused().at(-1), { reason: 'The logout token is not valid: not a JWT.', repeated: 199 })
  },
)

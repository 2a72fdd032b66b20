import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID } from '../helpers/gateway.js'
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

// The reason of a refused `typ` quotes the sender's typ, and the reason was
// the line's key: a flood with a new typ in each token wrote a warning each.
t.test('junk logout tokens each with a typ of their own write one warning a minute', async (t) => {
  const stack = await startObservedStack(t, { backchannelLogout: true })
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
  const post = (typ: string) =>
    jarFetch(new CookieJar(), `${stack.gateway.url}/auth/backchannel-logout`, {
      method: 'POST',
      body: new URLSearchParams({
        logout_token: `${b64({ alg: 'RS256', typ })}.${b64({ iss: stack.idp.issuer, aud: CLIENT_ID })}.c2ln`,
      }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
  const refused = () => stack.lines.filter((line) => line.msg === 'logout token refused')

  const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => post(`x${i}`)))
  t.same(new Set(answers.map((a) => a.status)), new Set([400]), 'every one is still refused')
  t.equal(refused().length, 1, 'one warning for 100 tokens of 100 types')
  t.match(refused()[0], { level: 40, reason: /^The logout token is not valid: unexpected typ x\d+\.$/ })

  stack.clock.advance(60_000)
  t.equal((await post('y')).status, 400)
  t.equal(refused().length, 2, 'a minute later the reason is written again')
  t.match(refused().at(-1), { reason: 'The logout token is not valid: unexpected typ y.', repeated: 99 })
})

/**
 * A refused back-channel logout token is a `logout token refused` warning,
 * written once a minute per reason. With several identity providers it
 * named none, and its once-a-minute key was the reason alone: partner's
 * logouts refused (its JWKS, an audience set wrong at partner) were a
 * line that did not say partner, and corp's refused for the same reason in
 * the same minute were counted as more of partner's, never written.
 */
import { generateKeyPair } from 'jose'
import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID } from '../helpers/gateway.js'
import { jarFetch } from '../helpers/login.js'
import { signLogoutToken } from '../helpers/logout.js'
import { LogLines } from '../helpers/reloadable.js'
import { startTwoIdps } from '../helpers/two-idps.js'

t.test("each provider's refused logout tokens are a warning of their own, naming it", async (t) => {
  const log = new LogLines()
  const set = await startTwoIdps(t, { config: { logLevel: 'info' }, gateway: { logStream: log.stream } })
  const base = set.urls[0]!
  const post = (token: string, path = '/auth/backchannel-logout') =>
    jarFetch(new CookieJar(), `${base}${path}`, {
      method: 'POST',
      body: new URLSearchParams({ logout_token: token }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
  const refusals = () => log.lines.filter((line) => line.msg === 'logout token refused')
  // Signed by the IdP, but past the age a logout token is taken at: one reason for both.
  const stale = { sub: 'alice', iat: Math.floor(Date.now() / 1000) - 3_600 }

  t.equal((await post(await set.partner.logoutToken(stale))).status, 400)
  t.match(refusals(), [{ level: 40, idp: 'partner', reason: /too old/ }], 'the warning names partner')

  t.equal((await post(await set.corp.logoutToken(stale))).status, 400)
  t.match(
    refusals(),
    [
      { idp: 'partner', reason: /too old/ },
      { idp: 'corp', reason: /too old/ },
    ],
    "corp's refusal is a warning of its own, not one more of partner's",
  )
  t.equal(refusals().length, 2)

  t.equal((await post(await set.corp.logoutToken(stale), '/auth/backchannel-logout/corp')).status, 400)
  t.equal(refusals().length, 2, "corp's next refusal in the minute, at its own path, is counted, not written")

  // A token no configured provider is named by: its issuer is not repeated.
  const { privateKey } = await generateKeyPair('RS256')
  const stranger = await signLogoutToken(
    { issuer: 'https://stranger.example', audience: CLIENT_ID, key: privateKey, kid: 'k' },
    { sub: 'alice' },
  )
  t.equal((await post(stranger)).status, 400)
  const none = refusals().at(-1)!
  t.equal(refusals().length, 3)
  t.match(none, { reason: /no configured provider has its issuer and audience/ }, 'it says none matched')
  t.notOk('idp' in none, 'and names nothing')
  t.notMatch(JSON.stringify(none), /stranger/, 'nor anything from the token')
})

/**
 * A logout token that comes while the issuer's JWKS cannot be fetched is
 * answered 503 and held, unverified, to verify once the keys can be read
 * (`backchannel-logout-while-the-keys-cannot-be-fetched.test.ts`). The
 * warning said only `back-channel logout held unverified`, and the 503's
 * line `idp_unavailable`: nothing said why the keys could not be read,
 * though a JWKS that redirects elsewhere, answers a page or a 5xx, or
 * cannot be reached each asks something else of the operator. The warning
 * now carries the `reason`, as the IdP's other failures do.
 */
import { exportJWK, generateKeyPair } from 'jose'
import t from 'tap'
import type { CannedAnswer, FaultMode } from '../../dev/idp.js'
import { awaitedLog } from '../helpers/awaited-log.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, route } from '../helpers/gateway.js'
import { jarFetch, login } from '../helpers/login.js'
import { signLogoutToken } from '../helpers/logout.js'
import { startStack } from '../helpers/stack.js'

const cases: [string, FaultMode | CannedAnswer, RegExp][] = [
  ['answers 503', '503', /^HTTP 503$/],
  [
    'redirects to another host',
    { status: 302, headers: { location: 'https://elsewhere.example/jwks?k=1' } },
    /^HTTP 302 redirect to https:\/\/elsewhere\.example\/jwks, which the gateway does not follow$/,
  ],
  [
    'answers a page',
    { status: 200, body: '<html>sign in</html>' },
    /^HTTP 200 that is not a JSON Web Key Set/,
  ],
  ['resets the connection', 'reset', /ECONNRESET|socket|closed/i],
]

for (const [name, fault, reason] of cases)
  t.test(`a JWKS that ${name}: the held token's warning says why`, async (t) => {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true })
    const jwk = { ...(await exportJWK(privateKey)), kid: 'idp-key', alg: 'RS256', use: 'sig' }
    const { logged, logStream } = awaitedLog()
    const { idp, gateway } = await startStack(t, {
      idp: { signingKey: jwk },
      backchannelLogout: true,
      routes: (upstream) => [route('/api/orders', upstream)],
      config: { logLevel: 'info' },
      gateway: { logStream },
    })
    await login(gateway.url, { user: 'erin' })
    const token = await signLogoutToken(
      { issuer: idp.issuer, audience: CLIENT_ID, key: privateKey, kid: 'idp-key' },
      { sub: 'erin' },
    )
    if (typeof fault === 'string') idp.setDown(fault)
    else idp.answer('jwks', fault)
    const answer = await jarFetch(new CookieJar(), `${gateway.url}/auth/backchannel-logout`, {
      method: 'POST',
      body: new URLSearchParams({ logout_token: token }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
    t.equal(answer.status, 503)
    const line = await logged((l) => l.code === 'GATEHOUSE_BACKCHANNEL_LOGOUT_UNVERIFIED')
    t.match(line, { level: 40, idp: 'default', reason })
    t.notMatch(JSON.stringify(line), /k=1/, 'no query of the redirect')
  })

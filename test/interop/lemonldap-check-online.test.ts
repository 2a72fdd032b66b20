/**
 * `gatehouse check --online` against LemonLDAP::NG (see lemonldap.test.ts):
 * its credential probe, a refresh-token grant for a random token, proves
 * the client's credentials before any user tries them. LemonLDAP::NG
 * refuses that grant with `400 invalid_request`, which still says it
 * authenticated the client; a wrong secret gets `401 invalid_client`.
 */
import t from 'tap'
import { runCheckOnline } from '../helpers/check-online.js'
import { skipWithoutLemonLdap, startLemonLdap } from '../helpers/lemonldap.js'

const CLIENT_ID = 'gatehouse'
const CLIENT_SECRET = 'my-bff-secret'

t.test(
  'check --online proves the client credentials at LemonLDAP::NG',
  { skip: skipWithoutLemonLdap() },
  async (t) => {
    const op = await startLemonLdap({
      client: {
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        redirectUris: ['http://127.0.0.1:3000/auth/callback'],
        postLogoutRedirectUris: ['http://127.0.0.1:3000/'],
      },
      accessTokenTtl: 60,
    })
    t.teardown(() => op.close())
    const check = async (secret: string, routes = 'routes: []', publicUrl = 'http://127.0.0.1:3000') => {
      const run = await runCheckOnline(
        [
          `server: { publicUrl: ${publicUrl} }`,
          'oidc:',
          `  issuer: ${op.issuer}`,
          `  clientId: ${CLIENT_ID}`,
          `  clientSecret: ${secret}`,
          '  authorizationParams: { prompt: consent }',
          '  timeout: 5s',
          `session: { secret: "${'s'.repeat(32)}" }`,
          routes,
        ].join('\n'),
      )
      return { code: run.code, out: `${run.out}\n${run.err}` }
    }

    const right = await check(CLIENT_SECRET)
    t.equal(right.code, 0, 'the registered secret passes', { output: right.out })
    t.match(
      right.out,
      /^client credentials \(probe\)\s+client_secret_basic\s+accepted\b.*\bok$/m,
      'the probe says the OP accepted the credentials',
    )

    t.notMatch(right.out, /another site/, 'a gateway on the same site as the OP: no logout hint')

    // LemonLDAP::NG's session cookie is SameSite=Lax: the default logout, a
    // form POST from another site, does not end its session (lemonldap.test.ts).
    const crossSite = await check(CLIENT_SECRET, 'routes: []', 'http://localhost:3000')
    t.equal(crossSite.code, 0, 'a gateway on another site passes', { output: crossSite.out })
    t.match(
      crossSite.out,
      /end_session_endpoint \(http:\/\/127\.0\.0\.1:\d+\) is on another site than http:\/\/localhost:3000: .*use auth\.endSession: get/,
      'with a hint that the logout POST carries no Lax cookie of the OP',
    )

    const wrong = await check('wrong-secret')
    t.equal(wrong.code, 1, 'a wrong secret fails the check', { output: wrong.out })
    t.match(
      wrong.out,
      /^client credentials \(probe\)\s+client_secret_basic\s+refused\b.*\bBLOCKING$/m,
      'the probe says the OP refused the credentials',
    )
    t.match(wrong.out, /refuses client gatehouse with every method/, 'with client_secret_post too')

    // LemonLDAP::NG 2.16 has no token exchange, and answers the grant `400
    // invalid_request`, which a route's 403 names: the check said nothing.
    const exchange = await check(
      CLIENT_SECRET,
      [
        'routes:',
        '  - path: /api/ledger',
        '    upstream: http://127.0.0.1:9',
        '    token: exchange',
        '    exchange: { audience: ledger-api }',
      ].join('\n'),
    )
    t.equal(exchange.code, 0, 'an exchange route does not fail the check', { output: exchange.out })
    t.match(
      exchange.out,
      /^token exchange \(routes\)\s+urn:ietf:params:oauth:grant-type:token-exchange\s+not listed\s+warn$/m,
      'its row says the grant is not listed',
    )
    t.match(
      exchange.out,
      /routes\[0\] \(token: exchange\) uses the grant urn:ietf:params:oauth:grant-type:token-exchange, which is not in grant_types_supported/,
      'and a hint names the route',
    )
  },
)

/**
 * The mix-up attack on a gateway with several identity providers (RFC 9700
 * §4.4), played with a real honest provider (the dev IdP, which like Entra
 * ID and Google sends no RFC 9207 `iss` with its answer) and a hostile one
 * (an HTTP server of the test's, whose every step the attacker chose).
 *
 * Mallory starts a sign-in at the honest provider in her own browser and
 * stops at its authorization URL. Alice signs in "with evil", whose
 * authorization endpoint sends her on to Mallory's URL with Alice's state
 * in it. The honest provider signs Alice in and sends her back with a code
 * for Mallory's login. With one redirect URI for every provider, the
 * gateway took that code to the provider Alice's login cookie named: evil,
 * which then had Alice's code; Mallory's browser redeemed it with her own
 * verifier and was signed in as Alice.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { startDevIdp } from '../../dev/idp.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, CLIENT_SECRET, startGateway, testConfig } from '../helpers/gateway.js'
import { apiCall, followLoginFlow, jarFetch } from '../helpers/login.js'
import { onFreePorts } from '../helpers/ports.js'

/** An authorization server that forwards the browser wherever the attacker says and keeps every code sent to it. */
async function hostileProvider(t: Test) {
  const codes: string[] = []
  let forward = (_authorize: URL) => 'about:blank'
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', issuer)
    if (url.pathname === '/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          issuer,
          authorization_endpoint: `${issuer}/authorize`,
          token_endpoint: `${issuer}/token`,
          jwks_uri: `${issuer}/jwks`,
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
        }),
      )
      return
    }
    if (url.pathname === '/authorize') {
      res.writeHead(302, { location: forward(url) }).end()
      return
    }
    if (url.pathname === '/token') {
      let body = ''
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString()
      })
      req.on('end', () => {
        const code = new URLSearchParams(body).get('code')
        if (code) codes.push(code)
        res.writeHead(400, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ error: 'invalid_grant' }))
      })
      return
    }
    res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return {
    issuer,
    codes,
    forwardTo(next: (authorize: URL) => string) {
      forward = next
    },
  }
}

t.test(
  'a code the honest provider issued never reaches another provider, nor signs Mallory in',
  async (t) => {
    const evil = await hostileProvider(t)
    await onFreePorts(1, async ([port]) => {
      const base = `http://127.0.0.1:${port}`
      const corp = await startDevIdp({
        quirks: { noIssParameter: true },
        clients: [
          {
            clientId: CLIENT_ID,
            clientSecret: CLIENT_SECRET,
            // Both: the shared address a gateway used to send, and corp's own.
            redirectUris: [`${base}/auth/callback`, `${base}/auth/callback/corp`],
            postLogoutRedirectUris: [`${base}/`],
          },
        ],
      })
      t.teardown(() => corp.close())
      const gateway = await startGateway(
        testConfig({
          port: port!,
          issuer: corp.issuer,
          routes: [],
          identityProviders: [
            { name: 'corp', issuer: corp.issuer, par: 'off' },
            { name: 'evil', issuer: evil.issuer },
          ],
        }),
      )
      t.teardown(() => gateway.close())

      const mallory = new CookieJar()
      const toCorp = new URL((await jarFetch(mallory, `${base}/auth/login?idp=corp`)).location!)
      t.equal(toCorp.origin, new URL(corp.issuer).origin, "Mallory's sign-in went to corp")
      t.equal(
        toCorp.searchParams.get('redirect_uri'),
        `${base}/auth/callback/corp`,
        "corp is asked to send the browser back to corp's own address",
      )
      const malloryState = toCorp.searchParams.get('state')!
      evil.forwardTo((authorize) => {
        const forwarded = new URL(toCorp)
        forwarded.searchParams.set('state', authorize.searchParams.get('state')!)
        return forwarded.href
      })

      const alice = new CookieJar()
      const toEvil = await jarFetch(alice, `${base}/auth/login?idp=evil`)
      t.equal(new URL(toEvil.location!).searchParams.get('redirect_uri'), `${base}/auth/callback/evil`)
      const toCorpForAlice = await jarFetch(alice, toEvil.location!)
      const callback = await followLoginFlow(alice, toCorpForAlice.location!, 'alice')
      t.equal(new URL(callback).pathname, '/auth/callback/corp', "corp answers at corp's address")
      const landed = await jarFetch(alice, callback)
      t.equal(landed.status, 400, "Alice's sign-in is refused: it came back at another provider's address")
      t.match(landed.text, /another identity provider/)
      t.same(evil.codes, [], 'no code reached the hostile provider')

      // Mallory finishes her own login with what evil was sent, if anything.
      const replay = new URL(callback)
      replay.searchParams.set('code', evil.codes[0] ?? 'nothing-was-sent-to-evil')
      replay.searchParams.set('state', malloryState)
      await jarFetch(mallory, replay.href)
      t.equal((await apiCall(mallory, `${base}/auth/user`)).status, 401, 'Mallory is not signed in as Alice')
      t.equal(corp.stats.authorizationCodeGrants, 0, 'corp redeemed no code of Alice’s')
      t.same(evil.codes, [])
    })
  },
)

t.test(
  "the limit: an honest provider without iss that also accepts the hostile one's address hands its code there",
  async (t) => {
    // What docs/identity-providers.md warns of: the distinct addresses are
    // the whole defence against a provider that sends no `iss`, so an
    // honest provider that accepts another's address undoes it. No check
    // of the gateway can tell: the answer is well-formed for the login it names.
    const evil = await hostileProvider(t)
    await onFreePorts(1, async ([port]) => {
      const base = `http://127.0.0.1:${port}`
      const corp = await startDevIdp({
        quirks: { noIssParameter: true },
        clients: [
          {
            clientId: CLIENT_ID,
            clientSecret: CLIENT_SECRET,
            redirectUris: [`${base}/auth/callback/corp`, `${base}/auth/callback/evil`],
            postLogoutRedirectUris: [`${base}/`],
          },
        ],
      })
      t.teardown(() => corp.close())
      const gateway = await startGateway(
        testConfig({
          port: port!,
          issuer: corp.issuer,
          routes: [],
          identityProviders: [
            { name: 'corp', issuer: corp.issuer, par: 'off' },
            { name: 'evil', issuer: evil.issuer },
          ],
        }),
      )
      t.teardown(() => gateway.close())
      const toCorp = new URL((await jarFetch(new CookieJar(), `${base}/auth/login?idp=corp`)).location!)
      evil.forwardTo((authorize) => {
        const forwarded = new URL(toCorp)
        forwarded.searchParams.set('state', authorize.searchParams.get('state')!)
        forwarded.searchParams.set('redirect_uri', `${base}/auth/callback/evil`)
        return forwarded.href
      })
      const alice = new CookieJar()
      const toEvil = await jarFetch(alice, `${base}/auth/login?idp=evil`)
      const callback = await followLoginFlow(
        alice,
        (await jarFetch(alice, toEvil.location!)).location!,
        'alice',
      )
      t.equal(new URL(callback).pathname, '/auth/callback/evil', "corp answered at evil's address")
      await jarFetch(alice, callback)
      t.same(evil.codes, [new URL(callback).searchParams.get('code')], "corp's code reached evil")
    })
  },
)

t.test('with the oidc: shorthand, one provider keeps the one address', async (t) => {
  await onFreePorts(1, async ([port]) => {
    const base = `http://127.0.0.1:${port}`
    const idp = await startDevIdp({
      clients: [
        { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [`${base}/auth/callback`] },
      ],
    })
    t.teardown(() => idp.close())
    const gateway = await startGateway(testConfig({ port: port!, issuer: idp.issuer, routes: [] }))
    t.teardown(() => gateway.close())
    const start = await jarFetch(new CookieJar(), `${base}/auth/login`)
    t.equal(new URL(start.location!).searchParams.get('redirect_uri'), `${base}/auth/callback`)
    const wrong = await jarFetch(new CookieJar(), `${base}/auth/callback/default?code=x&state=y`)
    t.equal(wrong.status, 404, 'no other address is served')
  })
})

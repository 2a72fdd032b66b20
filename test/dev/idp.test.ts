import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import * as oauth from 'oauth4webapi'
import t, { type Test } from 'tap'
import { startDevIdp } from '../../dev/idp.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { followLoginFlow, jarFetch, login } from '../helpers/login.js'

/**
 * A throwaway relying party with the gateway's auth routes, so the dev IdP
 * and the login driver can be tested before and apart from Gatehouse:
 * `GET /auth/login?returnTo=` → 302 to the IdP with a state cookie;
 * `GET /auth/callback` → code exchange, session cookie, 302 to returnTo;
 * `POST /backchannel` collects logout tokens.
 */
interface RelyingParty {
  readonly url: string
  readonly redirectUri: string
  readonly backchannelUri: string
  /** Token responses by session cookie value, newest last. */
  readonly sessions: Map<string, oauth.TokenEndpointResponse>
  readonly logoutTokens: string[]
  /** Set once the IdP is known. */
  as: oauth.AuthorizationServer | undefined
  close(): Promise<void>
}

interface Pending {
  readonly verifier: string
  readonly nonce: string
  readonly returnTo: string
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const pair of (req.headers.cookie ?? '').split(';')) {
    const [key, value] = pair.trim().split('=')
    if (key === name) return value
  }
  return undefined
}

async function startRelyingParty(client: oauth.Client, auth: oauth.ClientAuth): Promise<RelyingParty> {
  const pending = new Map<string, Pending>()
  const sessions = new Map<string, oauth.TokenEndpointResponse>()
  const logoutTokens: string[] = []
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', rp.url)
    try {
      if (url.pathname === '/auth/login') {
        const as = rp.as!
        const state = oauth.generateRandomState()
        const verifier = oauth.generateRandomCodeVerifier()
        const nonce = oauth.generateRandomNonce()
        pending.set(state, { verifier, nonce, returnTo: url.searchParams.get('returnTo') ?? '/' })
        // OIDC Core §11: a strict OP honours offline_access only with prompt=consent.
        const prompt = url.searchParams.get('prompt') ?? 'consent'
        const authorize = new URL(as.authorization_endpoint!)
        authorize.search = new URLSearchParams({
          client_id: client.client_id,
          redirect_uri: rp.redirectUri,
          response_type: 'code',
          scope: 'openid profile offline_access',
          state,
          nonce,
          code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
          code_challenge_method: 'S256',
          ...(prompt ? { prompt } : {}),
        }).toString()
        res
          .writeHead(302, { location: authorize.href, 'set-cookie': `rp_state=${state}; Path=/; HttpOnly` })
          .end()
        return
      }
      if (url.pathname === '/auth/callback') {
        const as = rp.as!
        const state = cookie(req, 'rp_state')
        const flow = state ? pending.get(state) : undefined
        if (!state || !flow) {
          res.writeHead(400).end('no login in progress')
          return
        }
        pending.delete(state)
        const params = oauth.validateAuthResponse(as, client, url, state)
        const response = await oauth.authorizationCodeGrantRequest(
          as,
          client,
          auth,
          params,
          rp.redirectUri,
          flow.verifier,
          { [oauth.allowInsecureRequests]: true },
        )
        const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, {
          expectedNonce: flow.nonce,
          requireIdToken: true,
        })
        const session = randomUUID()
        sessions.set(session, tokens)
        res
          .writeHead(302, {
            location: flow.returnTo,
            'set-cookie': ['rp_state=; Path=/; Max-Age=0', `rp_session=${session}; Path=/; HttpOnly`],
          })
          .end()
        return
      }
      if (url.pathname === '/backchannel' && req.method === 'POST') {
        let body = ''
        for await (const chunk of req) body += chunk
        const token = new URLSearchParams(body).get('logout_token')
        if (token) logoutTokens.push(token)
        res.writeHead(token ? 200 : 400).end()
        return
      }
      if (url.pathname === '/me') {
        const session = cookie(req, 'rp_session')
        res.writeHead(session && sessions.has(session) ? 200 : 401).end()
        return
      }
      res.writeHead(404).end()
    } catch (err) {
      res.writeHead(500).end((err as Error).message)
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const base = `http://127.0.0.1:${port}`
  const rp: RelyingParty = {
    url: base,
    redirectUri: `${base}/auth/callback`,
    backchannelUri: `${base}/backchannel`,
    sessions,
    logoutTokens,
    as: undefined,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  return rp
}

const insecure = { [oauth.allowInsecureRequests]: true } as const
const client: oauth.Client = { client_id: 'dev-idp-test' }
const SECRET = 'dev-idp-test-secret-that-is-long-enough'
const auth = oauth.ClientSecretBasic(SECRET)
const postClient: oauth.Client = { client_id: 'dev-idp-test-post' }
const postAuth = oauth.ClientSecretPost(SECRET)

const rp = await startRelyingParty(client, auth)
t.teardown(() => rp.close())
const idp = await startDevIdp({
  accessTokenTtl: 30,
  clients: [
    {
      clientId: client.client_id,
      clientSecret: SECRET,
      redirectUris: [rp.redirectUri],
      backchannelLogoutUri: rp.backchannelUri,
    },
    {
      clientId: postClient.client_id,
      clientSecret: SECRET,
      redirectUris: [rp.redirectUri],
      tokenEndpointAuthMethod: 'client_secret_post',
    },
  ],
})
t.teardown(() => idp.close())
const as = await oauth.processDiscoveryResponse(
  new URL(idp.issuer),
  await oauth.discoveryRequest(new URL(idp.issuer), insecure),
)
rp.as = as

function payload(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8'))
}

/** Logs in through the relying party and returns its token response. */
async function signIn(user: string): Promise<oauth.TokenEndpointResponse> {
  const { jar, callback } = await login(rp.url, { user, returnTo: '/home' })
  if (callback.status !== 302) throw new Error(`callback answered ${callback.status}: ${callback.text}`)
  return rp.sessions.get(jar.get(rp.url, 'rp_session')!)!
}

async function refresh(refreshToken: string, c = client, a = auth): Promise<Response> {
  return oauth.refreshTokenGrantRequest(as, c, a, refreshToken, insecure)
}

async function invalidGrant(t: Test, response: Response, message: string) {
  await t.rejects(
    oauth.processRefreshTokenResponse(as, client, response),
    { code: 'OAUTH_RESPONSE_BODY_ERROR', error: 'invalid_grant' },
    message,
  )
}

t.beforeEach(() => idp.resetStats())

t.test(
  'discovery advertises RFC 9207 iss, S256 PKCE, revocation, introspection and back-channel logout',
  async (t) => {
    t.equal(as.issuer, idp.issuer)
    t.equal(as.authorization_response_iss_parameter_supported, true)
    t.same(as.code_challenge_methods_supported, ['S256'])
    t.ok(as.revocation_endpoint)
    t.ok(as.introspection_endpoint)
    t.equal(as.backchannel_logout_supported, true)
    t.match(as.scopes_supported, ['openid', 'profile', 'offline_access', 'orders.read', 'reports.read'])
  },
)

t.test('login() drives the dev login form and the consent page: any user name signs in', async (t) => {
  const { jar, callback, callbackUrl, finalLocation, responses } = await login(rp.url, {
    user: 'bob',
    returnTo: '/orders?page=2',
  })
  t.equal(callback.status, 302)
  t.equal(finalLocation, `${rp.url}/orders?page=2`, 'lands on returnTo')
  const params = new URL(callbackUrl).searchParams
  t.ok(params.get('code'), 'the IdP sent a code')
  t.equal(params.get('iss'), idp.issuer, 'RFC 9207: with the issuer')
  t.equal(jar.get(rp.url, 'rp_state'), undefined, 'Max-Age=0 deleted the state cookie')
  t.ok(jar.get(rp.url, 'rp_session'), 'the session cookie was stored')
  t.ok(jar.header(idp.issuer), 'the IdP session cookie is kept apart, by origin')
  t.equal(responses.filter((r) => r.status === 200).length, 2, 'two pages shown: login, then consent')
  t.equal((await jarFetch(jar, `${rp.url}/me`)).status, 200, 'the jar sends the session back')

  const tokens = rp.sessions.get(jar.get(rp.url, 'rp_session')!)!
  t.ok(tokens.access_token)
  t.ok(tokens.refresh_token, 'offline access: a refresh token')
  t.equal(tokens.expires_in, 30)
  const claims = payload(tokens.id_token!)
  t.equal(claims.sub, 'bob')
  t.equal(claims.name, 'Bob')
  t.type(claims.sid, 'string')
  t.equal(idp.stats.authorizationCodeGrants, 1)
})

t.test(
  'strict by default: without prompt=consent, offline_access is dropped and no refresh token issued',
  async (t) => {
    const { jar, callback } = await login(rp.url, { user: 'dora', params: { prompt: '' } })
    t.equal(callback.status, 302)
    const tokens = rp.sessions.get(jar.get(rp.url, 'rp_session')!)!
    t.ok(tokens.access_token, 'the login itself works')
    t.equal(tokens.refresh_token, undefined, 'OIDC Core §11: no refresh token')
    t.notMatch(tokens.scope ?? '', /offline_access/, 'offline_access was not granted')
  },
)

t.test('followLoginFlow stops at the first redirect that leaves the IdP', async (t) => {
  const jar = new CookieJar()
  const start = await jarFetch(jar, `${rp.url}/auth/login?returnTo=/`)
  const callbackUrl = await followLoginFlow(jar, start.location!, 'carol')
  t.equal(new URL(callbackUrl).origin, rp.url)
  t.equal(new URL(callbackUrl).pathname, '/auth/callback')
  const again = await jarFetch(jar, `${rp.url}/auth/login?returnTo=/`)
  t.match(await followLoginFlow(jar, again.location!, 'carol'), /code=/, 'an IdP session skips the form')
})

t.test('refresh rotates; a replayed refresh token fails, revokes the grant and is counted', async (t) => {
  const first = await signIn('alice')
  const rotated = await oauth.processRefreshTokenResponse(as, client, await refresh(first.refresh_token!))
  t.ok(rotated.refresh_token)
  t.not(rotated.refresh_token, first.refresh_token, 'a new refresh token every time')
  t.not(rotated.access_token, first.access_token)
  t.equal(idp.stats.refreshGrants, 1)
  t.equal(idp.stats.refreshReplays, 0)
  t.equal((await idp.introspect(rotated.access_token)).active, true)

  await invalidGrant(t, await refresh(first.refresh_token!), 'the used one is refused')
  t.equal(idp.stats.refreshReplays, 1)
  t.equal(idp.stats.revokedGrants, 1, 'and the grant is revoked')
  await invalidGrant(t, await refresh(rotated.refresh_token!), 'so the newest refresh token is dead too')
  t.equal((await idp.introspect(rotated.access_token)).active, false, 'and so is the access token')
  await invalidGrant(t, await refresh(first.refresh_token!), 'a second replay')
  t.equal(idp.stats.refreshReplays, 2, 'is counted as well')
  t.equal(idp.stats.refreshGrants, 1)
  t.equal(idp.stats.grantErrors, 3)
})

t.test('a refresh token that was never issued is an error, not a replay', async (t) => {
  await invalidGrant(t, await refresh('not-a-refresh-token'), 'refused')
  t.equal(idp.stats.refreshReplays, 0)
  t.equal(idp.stats.grantErrors, 1)
})

t.test('client credentials with a plain scope, both client authentication methods', async (t) => {
  const response = await oauth.clientCredentialsGrantRequest(
    as,
    client,
    auth,
    { scope: 'orders.read' },
    insecure,
  )
  const token = await oauth.processClientCredentialsResponse(as, client, response)
  t.equal(token.scope, 'orders.read')
  t.equal(token.refresh_token, undefined)
  const seen = await idp.introspect(token.access_token)
  t.match(seen, {
    active: true,
    client_id: client.client_id,
    scope: 'orders.read',
    token_type: 'ClientCredentials',
  })
  t.same(await idp.describe(token.access_token), {
    client_id: client.client_id,
    scope: 'orders.read',
    exp: seen.exp,
  })
  t.equal(await idp.isActive(token.access_token), true)

  const viaPost = await oauth.processClientCredentialsResponse(
    as,
    postClient,
    await oauth.clientCredentialsGrantRequest(as, postClient, postAuth, { scope: 'reports.read' }, insecure),
  )
  t.equal(viaPost.scope, 'reports.read')
  t.equal(idp.stats.clientCredentialsGrants, 2)

  const unknownScope = await oauth.processClientCredentialsResponse(
    as,
    client,
    await oauth.clientCredentialsGrantRequest(as, client, auth, { scope: 'admin' }, insecure),
  )
  t.equal(unknownScope.scope, undefined, 'oidc-provider drops a scope it does not know')
  t.equal((await idp.introspect('made-up')).active, false)
})

t.test('an expired client secret is refused with invalid_client until it is renewed', async (t) => {
  await idp.expireClientSecret(client.client_id)
  t.teardown(() => idp.expireClientSecret(client.client_id, false))
  const refused = await oauth
    .processClientCredentialsResponse(
      as,
      client,
      await oauth.clientCredentialsGrantRequest(as, client, auth, { scope: 'orders.read' }, insecure),
    )
    .catch((err: unknown) => err)
  t.match(refused, { error: 'invalid_client', error_description: /client secret is expired/ })
  await idp.expireClientSecret(client.client_id, false)
  const renewed = await oauth.processClientCredentialsResponse(
    as,
    client,
    await oauth.clientCredentialsGrantRequest(as, client, auth, { scope: 'orders.read' }, insecure),
  )
  t.equal(renewed.scope, 'orders.read', 'renewed: accepted again')
})

t.test('revoking a refresh token revokes its grant and is counted', async (t) => {
  const tokens = await signIn('dave')
  await oauth.processRevocationResponse(
    await oauth.revocationRequest(as, client, auth, tokens.refresh_token!, insecure),
  )
  t.equal(idp.stats.revocations, 1)
  t.equal(idp.stats.revokedGrants, 1)
  t.equal(await idp.isActive(tokens.access_token), false)
  await invalidGrant(t, await refresh(tokens.refresh_token!), 'the revoked refresh token is refused')
  t.equal(idp.stats.refreshReplays, 0, 'which is not a replay')
})

t.test('setDown fails discovery, token and revocation until set back to ok', async (t) => {
  const tokens = await signIn('erin')
  t.teardown(() => idp.setDown('ok'))
  idp.resetStats()

  idp.setDown('503')
  const down = await refresh(tokens.refresh_token!)
  t.equal(down.status, 503)
  t.equal(down.headers.get('retry-after'), '1')
  t.equal((await fetch(`${idp.issuer}/.well-known/openid-configuration`)).status, 503)
  t.equal((await oauth.revocationRequest(as, client, auth, tokens.access_token, insecure)).status, 503)
  t.equal(idp.stats.refreshGrants, 0, 'the provider never saw the refresh')
  t.equal(idp.stats.tokenRequests, 1, 'but the server did')

  idp.setDown('reset')
  await t.rejects(refresh(tokens.refresh_token!), 'reset: the socket is destroyed')

  idp.setDown('hang')
  const started = Date.now()
  await t.rejects(
    oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token!, {
      ...insecure,
      signal: AbortSignal.timeout(200),
    }),
    { name: 'TimeoutError' },
    'hang: only the client timeout ends the call',
  )
  t.ok(Date.now() - started >= 150)

  idp.setDown('ok')
  const back = await oauth.processRefreshTokenResponse(as, client, await refresh(tokens.refresh_token!))
  t.ok(back.access_token, 'recovered: the refresh token still works')
  t.equal(idp.stats.refreshGrants, 1)
})

t.test('the token endpoint delay slows POST /token only, and can change at runtime', async (t) => {
  const tokens = await signIn('frank')
  t.teardown(() => idp.setTokenEndpointDelay(0))
  idp.setTokenEndpointDelay(300)
  const started = Date.now()
  const rotated = await oauth.processRefreshTokenResponse(as, client, await refresh(tokens.refresh_token!))
  t.ok(Date.now() - started >= 280, `refresh took ${Date.now() - started} ms`)

  // Discovery, asked after a delayed token request, answers before it: a
  // race between the two, not a bound in milliseconds, which a loaded
  // machine stretches.
  idp.setTokenEndpointDelay(2_000)
  const order: string[] = []
  const delayed = refresh(rotated.refresh_token!).then((r) => {
    order.push('token')
    return r
  })
  const discovery = await fetch(`${idp.issuer}/.well-known/openid-configuration`)
  order.push('discovery')
  t.equal(discovery.status, 200)
  const afterDelay = await delayed
  t.same(order, ['discovery', 'token'], 'discovery is not delayed')
  const twice = await oauth.processRefreshTokenResponse(as, client, afterDelay)

  let calls = 0
  idp.setTokenEndpointDelay(() => {
    calls++
    return 50
  })
  await oauth.processRefreshTokenResponse(as, client, await refresh(twice.refresh_token!))
  t.equal(calls, 1, 'a function is asked once per request')
})

t.test('endSession posts a back-channel logout token and revokes the grant', async (t) => {
  const tokens = await signIn('grace')
  const sid = payload(tokens.id_token!).sid
  rp.logoutTokens.length = 0

  const result = await idp.endSession('grace')
  t.same(result, { sessions: 1, delivered: 1, failed: 0 })
  t.equal(rp.logoutTokens.length, 1)
  const claims = payload(rp.logoutTokens[0]!)
  t.match(claims, { iss: idp.issuer, aud: client.client_id, sub: 'grace', sid })
  t.ok(claims.jti)
  t.same(claims.events, { 'http://schemas.openid.net/event/backchannel-logout': {} })
  t.equal(claims.nonce, undefined, 'a logout token has no nonce')
  t.equal(idp.stats.backchannelLogouts, 1)
  await invalidGrant(t, await refresh(tokens.refresh_token!), 'the session is over at the IdP too')
  t.same(await idp.endSession('grace'), { sessions: 0, delivered: 0, failed: 0 }, 'nothing left to end')
})

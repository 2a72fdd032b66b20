/**
 * The second interop lane: Gatehouse, as a user would set it up, against
 * Glewlwyd 2.7, an OpenID Provider we did not write, installed from
 * Debian's packages (test/helpers/glewlwyd.ts). Glewlwyd rotates refresh
 * tokens (refresh-token-one-use: always), revokes them (RFC 7009) and
 * answers introspection (RFC 7662) and sends back-channel logout tokens
 * when a session ends on its end-session page; its login and that page are
 * its own REST API, which the lane drives as its pages do.
 */
import { readFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { startEchoUpstream } from '../../dev/upstream.js'
import { start } from '../../src/server/start.js'
import { type AwaitedLog, awaitedLog } from '../helpers/awaited-log.js'
import { runCheckOnline } from '../helpers/check-online.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { type DpopUpstream, DpopVerifier, startDpopUpstream } from '../helpers/dpop-resource-server.js'
import { route, TestClock, testConfig } from '../helpers/gateway.js'
import { GLEWLWYD_PACKAGES, type Glewlwyd, skipWithoutGlewlwyd, startGlewlwyd } from '../helpers/glewlwyd.js'
import { apiCall, followLogoutLink, jarFetch, parseForm } from '../helpers/login.js'
import { metricSum } from '../helpers/metrics.js'
import { onFreePorts } from '../helpers/ports.js'
import { within } from '../helpers/within.js'

const CLIENT_ID = 'gatehouse'
const CLIENT_SECRET = 'my-bff-secret-for-glewlwyd'
/** Seconds; the gateway's clock is moved past it rather than waited for. */
const ACCESS_TOKEN_TTL = 60

t.test('.ci/run installs the packages the Glewlwyd lane needs', async (t) => {
  const script = readFileSync(new URL('../../.ci/run', import.meta.url), 'utf8')
  const list = /for pkg in (glewlwyd[^;]*); do/.exec(script)?.[1] ?? ''
  t.same(list.split(/[\s\\]+/).filter(Boolean), GLEWLWYD_PACKAGES)
})

t.test('Gatehouse against Glewlwyd', { skip: skipWithoutGlewlwyd() }, lane)

interface Lane {
  readonly op: Glewlwyd
  readonly base: string
  readonly clock: TestClock
  readonly metricsPort: number
}

async function lane(t: Test): Promise<void> {
  const clock = new TestClock()
  let op!: Glewlwyd
  // A resource server that checks each bearer token at the OP (RFC 7662), once per token.
  const introspected = new Map<string, Promise<Record<string, unknown>>>()
  const upstream = await startEchoUpstream({
    introspect: (token) => {
      let found = introspected.get(token)
      if (!found) {
        found = op.introspect(token)
        introspected.set(token, found)
      }
      return found
    },
    // A token Glewlwyd no longer calls active is refused, as a resource server would.
    rejectInactive: true,
  })
  t.teardown(() => upstream.close())
  // A resource server that checks DPoP proofs (RFC 9449 §7.1) against the key Glewlwyd bound the token to.
  const dpopUpstream = await startDpopUpstream(
    new DpopVerifier(async (token) => {
      let found = introspected.get(token)
      if (!found) {
        found = op.introspect(token)
        introspected.set(token, found)
      }
      return ((await found).cnf as { jkt?: string } | undefined)?.jkt
    }),
  )
  t.teardown(() => dpopUpstream.close())
  const dpopClock = new TestClock()
  const gatewayLog = awaitedLog()
  const byGetClock = new TestClock()
  const byGetLog = awaitedLog()
  const { base, metricsPort, gateway, dpop, byGet } = await onFreePorts(
    4,
    async ([port, metricsPort, dpopPort, byGetPort]) => {
      const base = `http://127.0.0.1:${port}`
      const dpopBase = `http://127.0.0.1:${dpopPort}`
      const byGetBase = `http://127.0.0.1:${byGetPort}`
      const starting = performance.now()
      op = await startGlewlwyd({
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        redirectUris: [`${base}/auth/callback`, `${dpopBase}/auth/callback`, `${byGetBase}/auth/callback`],
        postLogoutRedirectUri: `${byGetBase}/`,
        backchannelLogoutUri: `${base}/auth/backchannel-logout`,
        accessTokenTtl: ACCESS_TOKEN_TTL,
      })
      t.comment(`Glewlwyd ready at ${op.issuer} in ${Math.round(performance.now() - starting)} ms`)
      try {
        const gateway = await start(
          {
            ...testConfig({
              port: port!,
              issuer: op.issuer,
              routes: [route('/api/orders', upstream.url)],
              oidc: { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
              logLevel: 'info',
            }),
            metrics: { enabled: true, host: '127.0.0.1', port: metricsPort! },
          },
          { now: clock.now, handleSignals: false, logStream: gatewayLog.logStream },
        )
        const dpop = await start(
          testConfig({
            port: dpopPort!,
            issuer: op.issuer,
            routes: [route('/api/orders', dpopUpstream.url)],
            oidc: { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, dpop: true },
          }),
          { now: dpopClock.now, handleSignals: false },
        ).catch(async (err) => {
          await gateway.close()
          throw err
        })
        // The recipe's logout: a redirect to Glewlwyd's end-session endpoint, which takes GET only.
        const byGet = await start(
          testConfig({
            port: byGetPort!,
            issuer: op.issuer,
            routes: [
              route('/api/orders', upstream.url),
              // Glewlwyd has no token exchange: what a user who configures one meets.
              route('/api/ledger', upstream.url, {
                token: 'exchange',
                exchange: {
                  subjectToken: 'access_token',
                  audience: 'ledger',
                  scopes: [],
                  grant: 'token-exchange',
                },
              }),
            ],
            oidc: { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
            endSession: 'get',
            // A sign-in link may ask for a recent authentication.
            loginParams: ['prompt', 'max_age'],
            logLevel: 'info',
          }),
          { now: byGetClock.now, handleSignals: false, logStream: byGetLog.logStream },
        ).catch(async (err) => {
          await Promise.all([gateway.close(), dpop.close()])
          throw err
        })
        await Promise.all([gateway, dpop, byGet].map((running) => running.app.gatehouse.whenDiscovered()))
        return {
          base,
          metricsPort: metricsPort!,
          gateway,
          dpop: { base: dpopBase, gateway: dpop },
          byGet: { base: byGetBase, gateway: byGet },
        }
      } catch (err) {
        await op.close()
        throw err
      }
    },
  )
  t.teardown(() => op.close())
  t.teardown(() => gateway.close())
  t.teardown(() => dpop.gateway.close())
  t.teardown(() => byGet.gateway.close())
  const lane: Lane = { op, base, clock, metricsPort }

  // Before any test moves the gateway's clock: a logout token's iat is checked against it.
  await t.test('Glewlwyd ending its session sends a logout token that ends the Gatehouse session', (t) =>
    backchannelLogout(t, lane, gatewayLog),
  )
  await t.test(
    'a logout token without sid (session not required) ends every Gatehouse session of the user',
    (t) => backchannelLogoutOfUser(t, lane, gatewayLog),
  )
  await t.test('logout by POST (the default) is answered 404 and leaves the Glewlwyd session alive', (t) =>
    logoutByPost(t, lane),
  )
  await t.test('logout by GET (auth.endSession: get) ends the Glewlwyd session', (t) =>
    logoutByGet(t, { op, base: byGet.base, clock: byGetClock, metricsPort: 0 }, gatewayLog),
  )

  await t.test(
    'a token: exchange route is refused 403 (Glewlwyd has no RFC 8693), the session carries on',
    (t) => exchangeRefused(t, { op, base: byGet.base, clock: byGetClock, metricsPort: 0 }, byGetLog),
  )
  await t.test('a sign-in asked for with max_age fails, and says Glewlwyd writes auth_time 0', (t) =>
    maxAgeSignIn(t, { op, base: byGet.base, clock: byGetClock, metricsPort: 0 }, byGetLog),
  )
  await t.test('sign-in, an API call, 50 calls past expiry with one refresh grant, logout revokes', (t) =>
    flow(t, lane),
  )
  await t.test('a refresh token Glewlwyd no longer honours ends the session with 401', (t) =>
    deadRefreshToken(t, lane),
  )
  await t.test('a session refreshes after Glewlwyd restarts', (t) => afterRestart(t, lane))
  await t.test(
    'DPoP: proofs Glewlwyd binds the tokens to, 20 calls past expiry with one refresh grant',
    (t) => dpopFlow(t, { op, base: dpop.base, clock: dpopClock, metricsPort: 0 }, dpopUpstream),
  )
  await t.test('check --online says what Glewlwyd offers and refuses', (t) => checkOnline(t, op))
}

async function deadRefreshToken(t: Test, lane: Lane): Promise<void> {
  const { op, base, clock } = lane
  const jar = new CookieJar()
  if (!(await signIn(t, lane, jar))) return
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'the API call goes through')
  op.disableRefreshTokens()
  const issued = op.accessTokensIssued()
  clock.advance((ACCESS_TOKEN_TTL + 1) * 1000)
  // Glewlwyd answers the dead refresh token with an empty 400 (no OAuth error).
  const calls = await Promise.all(Array.from({ length: 5 }, () => apiCall(jar, `${base}/api/orders`)))
  t.same(
    calls.map((r) => r.status),
    Array(5).fill(401),
    'every call is answered 401',
    { bodies: calls.map((r) => r.text), op: op.log() },
  )
  t.match(calls[0]!.json(), { error: 'session_expired' }, 'the session is over')
  t.equal(op.accessTokensIssued(), issued, 'Glewlwyd issued nothing')
  t.equal(
    (await apiCall(jar, `${base}/auth/user`)).status,
    401,
    '/auth/user answers 401: the SPA signs in again',
  )
}

async function dpopFlow(t: Test, lane: Lane, upstream: DpopUpstream): Promise<void> {
  const { op, base, clock } = lane
  const jar = new CookieJar()
  if (!(await signIn(t, lane, jar))) return
  const first = await apiCall(jar, `${base}/api/orders`)
  t.equal(first.status, 200, 'the API call goes through', { body: first.text })
  // The verifier takes a proof only for the key Glewlwyd's introspection names in cnf.jkt.
  t.match(
    upstream.verdicts.at(-1),
    { ok: true, scheme: 'DPoP' },
    'with a proof of the key Glewlwyd bound the token to',
    {
      op: op.log(),
    },
  )

  const issued = op.accessTokensIssued()
  const before = upstream.verdicts.length
  clock.advance((ACCESS_TOKEN_TTL + 1) * 1000)
  const storm = await Promise.all(Array.from({ length: 20 }, () => apiCall(jar, `${base}/api/orders`)))
  t.same(
    storm.map((r) => r.status),
    Array(20).fill(200),
    'all 20 calls are answered 200',
    { op: op.log(), verdicts: upstream.verdicts.slice(before) },
  )
  t.equal(op.accessTokensIssued() - issued, 1, 'after one refresh grant, proven with the same key', {
    op: op.log(),
  })
  t.ok(
    upstream.verdicts.slice(before).every((v) => v.ok && v.scheme === 'DPoP'),
    'every call carried a DPoP-bound token and its proof',
  )
  const revokedBefore = revocations(op)
  await followLogoutLink(jar, base)
  t.equal(revocations(op) - revokedBefore, 1, 'logout revokes the DPoP-bound refresh token at Glewlwyd', {
    op: op.log(),
  })
}

/** From `/auth/login` through Glewlwyd's login and consent back to the gateway. */
async function signIn(t: Test, lane: Lane, jar: CookieJar): Promise<boolean> {
  const login = await jarFetch(jar, `${lane.base}/auth/login?returnTo=/`)
  t.equal(login.status, 302, '/auth/login sends the browser to the OP')
  t.ok(login.location?.startsWith(`${lane.op.issuer}/auth?`), 'to its authorization endpoint')
  const query = new URL(login.location!).searchParams
  t.same(
    [...query.keys()].sort(),
    ['client_id', 'request_uri'],
    'with a pushed request (RFC 9126: oidc.par auto, and Glewlwyd offers it)',
  )
  const callbackUrl = await lane.op.signIn(jar, login.location!)
  t.ok(callbackUrl.startsWith(`${lane.base}/auth/callback?`), 'Glewlwyd sends the browser back with a code', {
    callback: callbackUrl.replace(/code=[^&]*/, 'code=…'),
    op: lane.op.log(),
  })
  const callback = await jarFetch(jar, callbackUrl)
  t.equal(callback.status, 302, 'the callback signs the user in', { body: callback.text, op: lane.op.log() })
  t.equal(callback.location, `${lane.base}/`, 'and sends the browser to returnTo')
  return callback.status === 302 && callback.location === `${lane.base}/`
}

async function flow(t: Test, lane: Lane): Promise<void> {
  const { op, base, clock } = lane
  const jar = new CookieJar()
  const issuedBefore = op.accessTokensIssued()
  if (!(await signIn(t, lane, jar))) return
  t.equal(op.accessTokensIssued() - issuedBefore, 1, 'the code was redeemed once')
  const user = (await apiCall(jar, `${base}/auth/user`)).json<{ claims: Record<string, unknown> }>()
  t.match(user.claims, { name: op.user.name, amr: ['password'] }, "/auth/user has the user's name", {
    user,
  })

  const first = await apiCall(jar, `${base}/api/orders`)
  t.equal(first.status, 200, 'the API call goes through', { body: first.text })
  const seen = first.json<{ token: { present: boolean; sub?: string; client_id?: string } }>().token
  t.ok(seen.present, 'the upstream got a bearer token')
  t.ok(seen.sub, 'which Glewlwyd says is active, for a subject', { seen })

  // Past the access token's lifetime on the gateway's clock: the next calls need a refresh.
  const issued = op.accessTokensIssued()
  const refreshTokensBefore = op.refreshTokens()
  const refreshesBefore = await metricSum(
    lane.metricsPort,
    'gatehouse_token_refreshes_total',
    'outcome="success"',
  )
  clock.advance((ACCESS_TOKEN_TTL + 1) * 1000)
  const storm = await Promise.all(Array.from({ length: 50 }, () => apiCall(jar, `${base}/api/orders`)))
  t.same(
    storm.map((r) => r.status),
    Array(50).fill(200),
    'all 50 calls are answered 200',
  )
  t.equal(op.accessTokensIssued() - issued, 1, 'Glewlwyd issued exactly one token: one refresh grant', {
    op: op.log(),
  })
  t.equal(
    (await metricSum(lane.metricsPort, 'gatehouse_token_refreshes_total', 'outcome="success"')) -
      refreshesBefore,
    1,
    'gatehouse_token_refreshes_total{outcome="success"} rose by one',
  )
  const fingerprints = new Set(
    storm.map((r) => r.json<{ token: { fingerprint: string } }>().token.fingerprint),
  )
  t.equal(fingerprints.size, 1, 'every call carried the one new token')
  t.notOk(
    fingerprints.has(first.json<{ token: { fingerprint: string } }>().token.fingerprint),
    'not the expired one',
  )
  const refreshTokensAfter = op.refreshTokens()
  t.equal(refreshTokensAfter.length, refreshTokensBefore.length + 1, 'the grant rotated the refresh token')
  t.same(
    refreshTokensAfter.filter((r) => r.enabled).map((r) => r.id),
    [Math.max(...refreshTokensAfter.map((r) => r.id))],
    'only the newest one is still enabled at Glewlwyd',
  )

  // The rotated token must have been kept: a second expiry refreshes with it.
  clock.advance((ACCESS_TOKEN_TTL + 1) * 1000)
  const again = await apiCall(jar, `${base}/api/orders`)
  t.equal(again.status, 200, 'the rotated refresh token works', { body: again.text, op: op.log() })
  t.equal(op.accessTokensIssued() - issued, 2, 'with one more refresh grant')

  const revokedBefore = revocations(op)
  const logout = await followLogoutLink(jar, base)
  t.ok(logout.status === 200 || logout.status === 302 || logout.status === 303, 'logout answered', {
    status: logout.status,
  })
  t.equal(
    revocations(op) - revokedBefore,
    1,
    'the gateway revoked the refresh token at Glewlwyd (RFC 7009)',
    {
      op: op.log(),
    },
  )
  t.same(
    op.refreshTokens().filter((r) => r.enabled && r.clientId === CLIENT_ID),
    [],
    'no refresh token of the client is enabled at Glewlwyd any more',
  )
  const after = await apiCall(jar, `${base}/api/orders`)
  t.equal(after.status, 401, 'the API answers 401 after logout')
}

/** Refresh tokens Glewlwyd logged as revoked. */
function revocations(op: Glewlwyd): number {
  return op.logLines().filter((line) => /Refresh token generated for client '[^']*' revoked/.test(line))
    .length
}

async function checkOnline(t: Test, op: Glewlwyd): Promise<void> {
  const check = async (secret: string, endSession = 'post') => {
    const run = await runCheckOnline(
      [
        'server: { publicUrl: http://127.0.0.1:3000 }',
        'oidc:',
        `  issuer: ${op.issuer}`,
        `  clientId: ${CLIENT_ID}`,
        `  clientSecret: ${secret}`,
        '  timeout: 5s',
        `session: { secret: "${'s'.repeat(32)}" }`,
        `auth: { endSession: ${endSession} }`,
        'routes: []',
      ].join('\n'),
    )
    return { code: run.code, out: `${run.out}\n${run.err}` }
  }
  const right = await check(CLIENT_SECRET)
  t.equal(right.code, 0, 'the registered secret passes', { output: right.out })
  t.match(
    right.out,
    /^end-session by POST\s+auth\.endSession: post\s+refused: HTTP 404 to a POST\s+warn$/m,
    'it says Glewlwyd refuses the default logout, a POST to its end-session endpoint',
  )
  t.match(
    right.out,
    /^hint: end_session_endpoint answers a POST with HTTP 404: .*use auth\.endSession: get/m,
    'and says to log out by GET',
  )
  t.match(
    right.out,
    /^client credentials \(probe\)\s+client_secret_basic\s+accepted at the revocation endpoint: HTTP 200\b.*\(token endpoint: HTTP 400 that is not JSON\)\s+ok$/m,
    'the credentials are proven at the revocation endpoint, as the token endpoint answers an empty 400 whatever they are',
  )
  t.match(
    right.out,
    /^refresh tokens\s+.*refresh_token grant no\s+warn$/m,
    'Glewlwyd does not list the refresh_token grant it serves',
  )
  t.match(
    right.out,
    /^back-channel logout\s+\/auth\/backchannel-logout\s+no\s+warn$/m,
    'Glewlwyd does not advertise the back-channel logout it sends',
  )
  t.match(
    right.out,
    /^hint: the identity provider does not advertise backchannel_logout_supported: if it sends logout tokens all the same \(Glewlwyd 2\.7 does, without saying so\), register http:\/\/127\.0\.0\.1:3000\/auth\/backchannel-logout as the client's backchannel_logout_uri/m,
    'and says to register the back-channel URI all the same',
  )
  const byGet = await check(CLIENT_SECRET, 'get')
  t.equal(byGet.code, 0, 'with auth.endSession: get it passes', { output: byGet.out })
  t.notMatch(
    byGet.out,
    /end-session by POST|end_session_endpoint answers a POST/,
    'with nothing to say of logout',
  )

  const byClientId = await check(CLIENT_SECRET, 'client-id')
  t.equal(byClientId.code, 0, 'with auth.endSession: client-id it passes', { output: byClientId.out })
  t.match(
    byClientId.out,
    /^end-session by client_id\s+auth\.endSession: client-id\s+an empty HTTP 200 without id_token_hint\s+warn$/m,
    'it says Glewlwyd ends nothing without id_token_hint',
  )
  t.match(
    byClientId.out,
    /^hint: end_session_endpoint answers a logout request without id_token_hint with an empty HTTP 200: .*use auth\.endSession: get\.$/m,
    'and says to log out by GET',
  )

  const wrong = await check('wrong-secret')
  t.equal(wrong.code, 1, 'a wrong secret fails the check', { output: wrong.out })
  t.match(
    wrong.out,
    /^client credentials \(probe\)\s+client_secret_basic\s+refused at the revocation endpoint: HTTP 401\b.*BLOCKING$/m,
    'refused at the revocation endpoint',
  )
}

async function backchannelLogout(t: Test, lane: Lane, gatewayLog: AwaitedLog): Promise<void> {
  const { op, base } = lane
  const jar = new CookieJar()
  if (!(await signIn(t, lane, jar))) return
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'the API call goes through')
  const issued = op.accessTokensIssued()
  const sid = jar.get(op.issuer, 'GLEWLWYD2_OIDC_SID')
  t.ok(sid, "Glewlwyd's session cookie names the OIDC session")
  const from = gatewayLog.lines.length
  const delivered = gatewayLog.logged(
    (line) =>
      gatewayLog.lines.indexOf(line) >= from &&
      (line.msg === 'back-channel logout' || line.msg === 'logout token refused'),
  )
  // The user confirms the end of the session on Glewlwyd's page, whichever client asked for it.
  await op.confirmEndSession(jar, sid!)
  t.match(
    await within(delivered, 'a logout token from Glewlwyd'),
    { msg: 'back-channel logout', ended: 1 },
    'Gatehouse took the logout token',
    {
      op: op.log(),
    },
  )
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 401, 'the API answers 401')
  t.equal((await apiCall(jar, `${base}/auth/user`)).status, 401, '/auth/user answers 401')
  t.same(
    op.refreshTokens().filter((r) => r.enabled),
    [],
    'no refresh token is enabled at Glewlwyd',
  )
  t.equal(op.accessTokensIssued(), issued, 'and none was used')
  t.notOk(await op.signedIn(jar), 'the user is signed out of Glewlwyd')
}

async function logoutByPost(t: Test, lane: Lane): Promise<void> {
  const { op, base } = lane
  const jar = new CookieJar()
  if (!(await signIn(t, lane, jar))) return
  const revokedBefore = revocations(op)
  const page = await followLogoutLink(jar, base)
  t.equal(revocations(op) - revokedBefore, 1, 'logout revokes the refresh token at Glewlwyd')
  t.equal((await apiCall(jar, `${base}/auth/user`)).status, 401, 'and ends the Gatehouse session')
  // What the page's script does in the browser.
  const form = parseForm(page.text, base)
  t.equal(form.action, `${op.issuer}/end_session`, "the page posts to Glewlwyd's end-session endpoint")
  t.ok(form.fields.get('id_token_hint'), 'with the ID token')
  const posted = await jarFetch(jar, form.action, { method: 'POST', body: form.fields })
  t.equal(posted.status, 404, 'which answers the POST 404', { body: posted.text })
  t.ok(await op.signedIn(jar), 'and the user is still signed in at Glewlwyd: no credentials are asked for')
}

async function logoutByGet(t: Test, lane: Lane, gatewayLog: AwaitedLog): Promise<void> {
  const { op, base } = lane
  const jar = new CookieJar()
  if (!(await signIn(t, lane, jar))) return
  t.ok(await op.signedIn(jar), 'the user is signed in at Glewlwyd')
  const revokedBefore = revocations(op)
  const logout = await followLogoutLink(jar, base)
  t.equal(logout.status, 302, 'logout redirects the browser', { body: logout.text })
  const to = new URL(logout.location ?? 'none:')
  t.equal(`${to.origin}${to.pathname}`, `${op.issuer}/end_session`, "to Glewlwyd's end-session endpoint")
  t.ok(to.searchParams.get('id_token_hint'), 'with the ID token')
  t.equal(revocations(op) - revokedBefore, 1, 'having revoked the refresh token at Glewlwyd')
  t.equal((await apiCall(jar, `${base}/auth/user`)).status, 401, 'and ended the Gatehouse session')
  const from = gatewayLog.lines.length
  const delivered = gatewayLog.logged(
    (line) => gatewayLog.lines.indexOf(line) >= from && line.msg === 'back-channel logout',
  )
  const ended = await op.endSession(jar, to.href)
  t.match(ended, { status: 302, prompt: 'end_session' }, 'Glewlwyd asks the user to confirm the logout')
  t.notOk(
    await op.signedIn(jar),
    'once confirmed, the user is signed out of Glewlwyd: a new sign-in asks for credentials',
  )
  // RP-Initiated Logout 1.0 §3: the OP should send the browser to post_logout_redirect_uri. See docs/identity-providers.md.
  t.equal(
    ended.backTo,
    undefined,
    'Glewlwyd keeps the browser on its own page (it returns only with a state, which Gatehouse does not send)',
  )
  // The client's back-channel URI is the other gateway's, which holds no session of this sid.
  t.match(
    await within(delivered, 'a logout token from Glewlwyd'),
    { ended: 0 },
    'and sends the logout token, which ends nothing more',
  )
}

async function maxAgeSignIn(t: Test, lane: Lane, log: AwaitedLog): Promise<void> {
  const { op, base } = lane
  const jar = new CookieJar()
  const login = await jarFetch(jar, `${base}/auth/login?returnTo=/&max_age=600`)
  t.equal(login.status, 302, '/auth/login sends the browser to the OP')
  const callbackUrl = await op.signIn(jar, login.location!)
  t.ok(callbackUrl.startsWith(`${base}/auth/callback?`), 'Glewlwyd sends the browser back with a code')
  const revokedBefore = revocations(op)
  const from = log.lines.length
  const callback = await jarFetch(jar, callbackUrl)
  t.equal(callback.status, 400, 'the callback refuses the sign-in', { body: callback.text })
  // Glewlwyd reads auth_time from the browser's session cookie, which its token endpoint never gets.
  const reason = /auth_time is 0 \(1970-01-01\).*remove max_age/
  t.match(callback.text, reason, 'the page says auth_time is 0 and to remove max_age')
  t.match(
    log.lines.slice(from).find((line) => line.msg === 'login callback refused'),
    { code: 'GATEHOUSE_ERR_LOGIN_FAILED', operation: 'code_exchange', reason },
    'and so does the log line',
  )
  t.equal(revocations(op) - revokedBefore, 1, "the refused sign-in's refresh token is revoked at Glewlwyd")
  t.equal((await apiCall(jar, `${base}/auth/user`)).status, 401, 'no session was made')
}

async function afterRestart(t: Test, lane: Lane): Promise<void> {
  const { op, base, clock } = lane
  const jar = new CookieJar()
  if (!(await signIn(t, lane, jar))) return
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'the API call goes through')
  const starting = performance.now()
  await op.restart()
  t.comment(`Glewlwyd restarted in ${Math.round(performance.now() - starting)} ms`)
  const issued = op.accessTokensIssued()
  clock.advance((ACCESS_TOKEN_TTL + 1) * 1000)
  const calls = await Promise.all(Array.from({ length: 10 }, () => apiCall(jar, `${base}/api/orders`)))
  t.same(
    calls.map((r) => r.status),
    Array(10).fill(200),
    'the 10 calls past expiry are answered 200',
    { bodies: calls.filter((r) => r.status !== 200).map((r) => r.text), op: op.log() },
  )
  t.equal(op.accessTokensIssued() - issued, 1, 'after one refresh grant at the restarted Glewlwyd', {
    op: op.log(),
  })
}

async function exchangeRefused(t: Test, lane: Lane, log: AwaitedLog): Promise<void> {
  const { op, base } = lane
  const jar = new CookieJar()
  if (!(await signIn(t, lane, jar))) return
  const from = log.lines.length
  const exchanged = await apiCall(jar, `${base}/api/ledger`)
  t.equal(exchanged.status, 403, 'the route answers 403', { body: exchanged.text })
  t.match(
    exchanged.json(),
    { error: 'token_exchange_refused', message: /\(HTTP 400\)/ },
    'naming the refusal',
  )
  t.match(
    log.lines.slice(from).find((line) => line.code === 'GATEHOUSE_ERR_TOKEN_EXCHANGE_REFUSED'),
    { audience: 'ledger', status: 400, reason: 'HTTP 400 that is not JSON' },
    "the warning says Glewlwyd's answer was an empty 400",
  )
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'the session and its other routes carry on')
  const revokedBefore = revocations(op)
  await followLogoutLink(jar, base)
  t.equal(revocations(op) - revokedBefore, 1, 'logout revokes its refresh token')
}

async function backchannelLogoutOfUser(t: Test, lane: Lane, gatewayLog: AwaitedLog): Promise<void> {
  const { op, base } = lane
  await op.requireSessionInLogoutTokens(false)
  t.teardown(() => op.requireSessionInLogoutTokens(true))
  // Two browsers, each its own Glewlwyd session.
  const here = new CookieJar()
  const there = new CookieJar()
  if (!(await signIn(t, lane, here)) || !(await signIn(t, lane, there))) return
  const sid = here.get(op.issuer, 'GLEWLWYD2_OIDC_SID')
  t.not(sid, there.get(op.issuer, 'GLEWLWYD2_OIDC_SID'), 'in two Glewlwyd sessions')
  const from = gatewayLog.lines.length
  const delivered = gatewayLog.logged(
    (line) =>
      gatewayLog.lines.indexOf(line) >= from &&
      (line.msg === 'back-channel logout' || line.msg === 'logout token refused'),
  )
  await op.confirmEndSession(here, sid!)
  t.match(
    await within(delivered, 'a logout token from Glewlwyd'),
    { msg: 'back-channel logout', ended: 2 },
    'the token names the user alone, and Gatehouse ends both sessions',
    { op: op.log() },
  )
  t.equal((await apiCall(here, `${base}/auth/user`)).status, 401, 'this browser is signed out')
  t.equal((await apiCall(there, `${base}/auth/user`)).status, 401, 'and so is the other')
  t.ok(await op.signedIn(there), 'though the other browser is still signed in at Glewlwyd')
  // Glewlwyd disabled the ended session's tokens only; Gatehouse dropped the other's unused.
  t.equal(
    op.refreshTokens().filter((r) => r.enabled).length,
    1,
    "the other session's refresh token, which nothing holds now, stays enabled at Glewlwyd",
  )
  op.disableRefreshTokens()
}

/**
 * The interop lane: Gatehouse, as a user would set it up, against
 * LemonLDAP::NG, an OpenID Provider we did not write, installed from
 * Debian's packages. The client is confidential with a secret that holds a
 * `-` and authenticates with the default method, client_secret_basic.
 * LemonLDAP::NG compares the decoded Basic credentials without undoing the
 * form-encoding of RFC 6749 §2.3.1, answers an unknown refresh token with
 * `400 invalid_request` rather than `invalid_grant`, does not rotate refresh
 * tokens and has no revocation endpoint. Error shapes it never gives
 * (an OAuth error in a 200, JSON labelled as a page) come from nginx in
 * front of it, answering the token endpoint in the portal's place.
 * Relying parties of their own, each with a gateway of its own, show how
 * it signs (HS512 with the secret by default; RS512 ID tokens and userinfo,
 * through a rotation of its one key) and serve two replicas sharing a
 * real redis-server.
 */
import { mkdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Browser, Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { startStaticServer } from '../../dev/static.js'
import { startEchoUpstream } from '../../dev/upstream.js'
import { type RunningGateway, start } from '../../src/server/start.js'
import { launchChromium } from '../helpers/chromium.js'
import { route, TestClock, testConfig } from '../helpers/gateway.js'
import {
  type CannedTokenAnswer,
  DEMO_USER,
  LEMONLDAP_PACKAGES,
  type LemonLdap,
  skipWithoutLemonLdap,
  startLemonLdap,
} from '../helpers/lemonldap.js'
import { metricSum } from '../helpers/metrics.js'
import { onFreePorts } from '../helpers/ports.js'
import { startRedis } from '../helpers/redis.js'

/**
 * The file's budget, past tap's 120 s: six flows in real Chromium against a
 * Perl OP behind nginx took 108 s of a CI run on a loaded machine (98 s of
 * it the flows), at the default's edge. It still ends a hang.
 */
t.setTimeout(300_000)

const CLIENT_ID = 'gatehouse'
/** A `-`: oauth4webapi's RFC 6749 §2.3.1 encoding makes it `%2D`, which LemonLDAP::NG never decodes. */
const CLIENT_SECRET = 'my-bff-secret'
/** Seconds; the clock is moved past it rather than waited for. */
const ACCESS_TOKEN_TTL = 60
const artifacts = fileURLToPath(new URL('../../test-artifacts/lemonldap/', import.meta.url))

t.test('.ci/run installs the packages the lane needs, no more, no fewer', async (t) => {
  const script = readFileSync(new URL('../../.ci/run', import.meta.url), 'utf8')
  const list = /for pkg in ([^;]*); do/.exec(script)?.[1] ?? ''
  t.same(list.split(/[\s\\]+/).filter(Boolean), LEMONLDAP_PACKAGES)
})

t.test('Gatehouse against LemonLDAP::NG', { skip: skipWithoutLemonLdap() }, lane)

async function lane(t: Test): Promise<void> {
  mkdirSync(artifacts, { recursive: true })
  const clock = new TestClock()
  let op!: LemonLdap
  // A resource server that checks each bearer token at the OP (RFC 7662), once per token.
  const introspected = new Map<string, Promise<Record<string, unknown> | undefined>>()
  const upstream = await startEchoUpstream({
    describeToken: (token) => {
      let found = introspected.get(token)
      if (!found) {
        found = op.introspect(token).then((r) => (r.active ? { ...r } : undefined))
        introspected.set(token, found)
      }
      return found
    },
  })
  t.teardown(() => upstream.close())
  const frontend = await startStaticServer(fileURLToPath(new URL('../../demo/public/', import.meta.url)))
  t.teardown(() => frontend.close())
  // Sessions of the two replicas of one gateway, shared as in a cluster.
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  // The OP must know each gateway's redirect URI, and the demo's panel reads
  // the metrics listener through a route, before either listens:
  // onFreePorts picks again if another process takes a port first.
  const PARTY_NAMES = Object.keys(PARTIES) as PartyName[]
  const { base, metricsPort, parties, started } = await onFreePorts(
    3 + PARTY_NAMES.length,
    async ([port, metricsPort, replicaPort, ...partyPorts]) => {
      const base = `http://127.0.0.1:${port}`
      // A relying party on another site than the OP's (localhost, not 127.0.0.1).
      const partyBase = (i: number) =>
        `http://${PARTY_NAMES[i]!.startsWith('cross-site') ? 'localhost' : '127.0.0.1'}:${partyPorts[i]}`
      const starting = performance.now()
      op = await startLemonLdap({
        client: {
          clientId: CLIENT_ID,
          clientSecret: CLIENT_SECRET,
          redirectUris: [`${base}/auth/callback`],
          postLogoutRedirectUris: [`${base}/`],
        },
        clients: PARTY_NAMES.map((name, i) => ({
          clientId: `${CLIENT_ID}-${name}`,
          clientSecret: CLIENT_SECRET,
          redirectUris: [`${partyBase(i)}/auth/callback`],
          postLogoutRedirectUris: [`${partyBase(i)}/`],
          options: PARTIES[name],
        })),
        accessTokenTtl: ACCESS_TOKEN_TTL,
      })
      t.comment(`LemonLDAP::NG ready at ${op.issuer} in ${Math.round(performance.now() - starting)} ms`)
      const config = {
        ...testConfig({
          port: port!,
          issuer: op.issuer,
          routes: [
            route('/api/orders', upstream.url),
            route('/api/reports', upstream.url, { token: 'client', anonymous: true, scopes: ['reports'] }),
            route('/api/unscoped', upstream.url, { token: 'client', anonymous: true }),
            route('/demo/metrics', `http://127.0.0.1:${metricsPort}`, {
              token: 'none',
              rewritePath: '/metrics',
            }),
            route('/', frontend.url, { token: 'none', csrf: false }),
          ],
          // clientAuth is left to its default, client_secret_basic.
          oidc: { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
        }),
        metrics: { enabled: true, host: '127.0.0.1', port: metricsPort! },
      }
      const started: RunningGateway[] = []
      const startParty = async (name: PartyName, port: number, publicUrl: string, store?: string) => {
        const gateway = await start(
          testConfig({
            port,
            publicUrl,
            issuer: op.issuer,
            routes: [
              route('/api/orders', upstream.url),
              ...(name === 'narrowed' ? NARROWED_ROUTES(upstream.url) : []),
            ],
            ...(store ? { store, keyPrefix: redis.prefix } : {}),
            ...(name === 'cross-site-get' ? { endSession: 'get' as const } : {}),
            oidc: { clientId: `${CLIENT_ID}-${name}`, clientSecret: CLIENT_SECRET },
          }),
          { now: clock.now, handleSignals: false },
        )
        started.push(gateway)
        return gateway
      }
      try {
        const gateway = await start(config, { now: clock.now, handleSignals: false })
        started.push(gateway)
        const parties = {} as Record<PartyName, string>
        for (const [i, name] of PARTY_NAMES.entries()) {
          const gw = await startParty(
            name,
            partyPorts[i]!,
            partyBase(i),
            name === 'replicas' ? redis.url : undefined,
          )
          parties[name] = partyBase(i)
          void gw
        }
        // The second replica, behind the same public URL as the first (one load balancer).
        const i = PARTY_NAMES.indexOf('replicas')
        const second = await startParty('replicas', replicaPort!, partyBase(i), redis.url)
        await Promise.all(started.map((g) => g.app.gatehouse.whenDiscovered()))
        return {
          base,
          metricsPort: metricsPort!,
          gateway,
          parties: { ...parties, replica2: second.url },
          started,
        }
      } catch (err) {
        await Promise.all(started.map((g) => g.close()))
        await op.close()
        throw err
      }
    },
  )
  t.teardown(() => op.close())
  t.teardown(() => Promise.all(started.map((g) => g.close())))

  const browser = await launchChromium(t, ['--disable-component-update', '--disable-sync'])

  const lane = { op, base, clock, browser, metricsPort, parties }

  t.test('login, API call, expiry, 50 calls with one refresh at the OP, logout', (t) => flow(t, lane))
  t.test('a refresh token deleted at the OP ends the session with 401, and the SPA goes back to login', (t) =>
    deletedRefreshToken(t, lane),
  )
  t.test('an OAuth error the token endpoint gives in another shape ends the session with 401', (t) =>
    errorsInOtherShapes(t, lane),
  )
  t.test('an online refresh token serves a storm with one refresh and ends with the SSO session', (t) =>
    onlineRefreshToken(t, lane),
  )
  t.test('a code LemonLDAP::NG refuses is named on the sign-in page, not as an outage', (t) =>
    refusedCode(t, lane),
  )
  t.test('ID tokens signed HS512, its default, and RS512 with signed userinfo, through a key rotation', (t) =>
    signatures(t, lane),
  )
  t.test(
    'an unsigned ID token or userinfo, which it writes in two parts, is named on the sign-in page',
    (t) => unsignedJwts(t, lane),
  )
  t.test(
    'two replicas sharing Redis: a storm over both refreshes once at the OP, a logout at one ends both',
    (t) => replicas(t, lane),
  )
  t.test(
    'routes that ask for narrower tokens: scope and resource ignored, the exchange refused and named',
    (t) => narrowedTokens(t, lane),
  )
  t.test(
    'an offline refresh token outlives a sign-out at LemonLDAP::NG, which has no back-channel logout',
    (t) => offlineOutlivesOpLogout(t, lane),
  )
  t.test('from another site, logout by POST leaves its Lax-cookie session; by GET it ends it', (t) =>
    crossSiteLogout(t, lane),
  )
  t.test('a refused consent comes back as consent_required, to returnTo with no session', (t) =>
    refusedConsent(t, lane),
  )
  t.test(
    'prompt=none without an SSO session shows the login form, and signing in there completes the login',
    (t) => promptNone(t, lane),
  )
  t.test('client credentials: a token for a route with scopes, invalid_scope named for one without', (t) =>
    clientCredentials(t, lane),
  )
}

interface Lane {
  readonly op: LemonLdap
  readonly base: string
  readonly clock: TestClock
  readonly browser: Browser
  readonly metricsPort: number
  /** Each relying party's gateway (PARTIES), and the second replica's. */
  readonly parties: Readonly<Record<PartyName | 'replica2', string>>
}

/**
 * Relying parties beyond the lane's own (their options, as
 * `oidcRPMetaDataOptions…`), each with a gateway of its own on the
 * defaults: how LemonLDAP::NG signs what it sends, and two replicas
 * sharing one Redis.
 */
const PARTIES = {
  // LemonLDAP::NG's own default: HMAC with the client secret.
  hs512: { IDTokenSignAlg: 'HS512' },
  'signed-userinfo': { IDTokenSignAlg: 'RS512', UserInfoSignAlg: 'RS512' },
  'unsigned-id-token': { IDTokenSignAlg: 'none' },
  'unsigned-userinfo': { UserInfoSignAlg: 'none' },
  replicas: {},
  // Its gateway has routes for narrower tokens (NARROWED_ROUTES).
  narrowed: {},
  // On localhost, another site than the OP's 127.0.0.1: logout by POST (the default), and by GET.
  'cross-site': {},
  'cross-site-get': {},
} as const satisfies Record<string, Record<string, string>>
type PartyName = keyof typeof PARTIES

/** Routes that ask the OP for a token of their own, beyond the session's: down-scoped, for a resource, exchanged. */
const NARROWED_ROUTES = (upstream: string) => [
  route('/api/profile', upstream, { scopes: ['profile'] }),
  route('/api/resource', upstream, { resource: 'https://orders.example/' }),
  route('/api/exchanged', upstream, {
    token: 'exchange',
    exchange: { audience: 'orders-api', subjectToken: 'access_token', scopes: [], grant: 'token-exchange' },
  }),
]

/** Token-endpoint calls nginx logged in front of LemonLDAP::NG, by status. */
function tokenCalls(op: LemonLdap): string[] {
  return op.accessLog().filter((line) => line.startsWith('POST /oauth2/token '))
}

/** What the page shows, for a failure message. */
async function pageText(page: Page): Promise<string> {
  const text = await page.textContent('body').catch(() => '')
  // Origin and path only: the query of a callback holds the authorization code.
  const url = new URL(page.url())
  return `${url.origin}${url.pathname}: ${(text ?? '').replace(/\s+/g, ' ').trim().slice(0, 400)}`
}

/**
 * From the SPA's sign-in button through LemonLDAP::NG's login form and
 * consent page (offline_access with prompt=consent, OIDC Core §11) back to
 * the SPA. Returns whether the SPA shows a signed-in user.
 */
async function signIn(t: Test, page: Page, lane: Lane, user: { login: string; password: string }) {
  const shot = screenshots(page, t.name)
  await page.goto(lane.base)
  await page.locator('#signed-out').waitFor()
  await page.click('#login')
  await page.locator('input[name="user"]').waitFor()
  t.ok(page.url().startsWith(lane.op.issuer), 'the browser is at the LemonLDAP::NG portal')
  await shot('portal-login')
  await page.fill('input[name="user"]', user.login)
  await page.fill('input[name="password"]', user.password)
  await page.click('button[type="submit"]')
  await page.locator('button.positive').waitFor()
  await shot('portal-consent')
  await Promise.all([
    page.waitForURL((url) => url.origin === lane.base, { timeout: 15_000 }),
    page.click('button.positive'),
  ])
  const signedIn = await page
    .locator('#signed-in')
    .waitFor({ timeout: 10_000 })
    .then(
      () => true,
      () => false,
    )
  t.ok(signedIn, 'the SPA shows a signed-in user', {
    page: await pageText(page),
    op: lane.op.log().slice(-3_000),
  })
  await shot('signed-in')
  return signedIn
}

function screenshots(page: Page, prefix: string) {
  let step = 0
  const slug = prefix.replace(/[^a-z0-9]+/gi, '-').slice(0, 40)
  return (name: string) =>
    page
      .screenshot({
        path: `${artifacts}${slug}-${String(++step).padStart(2, '0')}-${name}.png`,
        fullPage: true,
      })
      .catch(() => {})
}

async function flow(t: Test, lane: Lane): Promise<void> {
  const { op, base, clock } = lane
  const context = await lane.browser.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  const shot = screenshots(page, 'flow')
  const rows = () => page.locator('#calls tbody tr')

  const before = tokenCalls(op).length
  if (!(await signIn(t, page, lane, DEMO_USER))) return
  t.match(
    await page.textContent('#who'),
    `${DEMO_USER.name} (${DEMO_USER.login})`,
    'with the name from userinfo',
  )
  t.same(
    tokenCalls(op).slice(before),
    ['POST /oauth2/token 200'],
    'the code was redeemed, with the default client_secret_basic',
  )

  await page.click('#call-user')
  await page.locator('#calls tbody tr[data-status="200"]').first().waitFor()
  t.match(
    await rows().first().textContent(),
    `sub ${DEMO_USER.login}`,
    'the upstream got a token the OP says is active',
  )
  t.same(tokenCalls(op).slice(before), ['POST /oauth2/token 200'], 'a fresh token: no refresh')
  await shot('first-call')

  // Past the OP's access-token lifetime: the next calls need a refresh.
  const refreshesBefore = await metricSum(
    lane.metricsPort,
    'gatehouse_token_refreshes_total',
    'outcome="success"',
  )
  const tokenCallsBefore = tokenCalls(op).length
  clock.advance((ACCESS_TOKEN_TTL + 1) * 1000)
  await page.click('#fire')
  await page.locator('#burst[data-done="true"]').waitFor({ timeout: 30_000 })
  await shot('burst')
  t.equal(await page.textContent('#burst-answered'), '50 of 50, all 200')
  t.equal(await page.textContent('#burst-calls'), '50', 'the gateway counted 50 calls')
  t.equal(await page.textContent('#burst-refreshes'), '1', 'and one refresh')
  t.equal(
    (await metricSum(lane.metricsPort, 'gatehouse_token_refreshes_total', 'outcome="success"')) -
      refreshesBefore,
    1,
    'gatehouse_token_refreshes_total{outcome="success"} rose by one',
  )
  t.same(
    tokenCalls(op).slice(tokenCallsBefore),
    ['POST /oauth2/token 200'],
    'the OP saw exactly one token request',
  )
  t.match(await page.textContent('#burst-token'), /^[0-9a-f]{8}$/, 'every call carried the one new token')

  // LemonLDAP::NG does not rotate: the refresh answer has no refresh_token,
  // so the old one must have been kept. A second expiry proves it.
  clock.advance((ACCESS_TOKEN_TTL + 1) * 1000)
  const callsBefore = await rows().count()
  await page.click('#call-user')
  await rows().nth(callsBefore).waitFor()
  t.equal(await rows().first().getAttribute('data-status'), '200', 'the kept refresh token works again')
  t.same(
    tokenCalls(op).slice(tokenCallsBefore),
    ['POST /oauth2/token 200', 'POST /oauth2/token 200'],
    'with one more refresh',
  )

  // RP-Initiated Logout 1.0 §2 by POST (auth.endSession's default), so the
  // ID token is in no URL: LemonLDAP::NG takes it.
  const posted = page.waitForRequest(
    (r) => r.method() === 'POST' && r.url().startsWith(`${op.issuer}oauth2/logout`),
  )
  await page.click('#logout')
  const logoutRequest = await posted
  await page.locator('button.positive').waitFor()
  t.ok(page.url().startsWith(`${op.issuer}oauth2/logout`), 'RP-initiated logout at the OP')
  t.notMatch(page.url(), /id_token_hint/, 'no ID token in the URL')
  const logout = new URLSearchParams(logoutRequest.postData() ?? '')
  t.equal(logout.get('post_logout_redirect_uri'), `${base}/`, 'back to the registered URI')
  t.ok(logout.get('id_token_hint'), 'with the ID token as hint, in the body')
  await shot('portal-logout')
  await page.click('button.positive')
  // LemonLDAP::NG 2.16 sends the browser back to post_logout_redirect_uri
  // unless its pdata cookie still holds the portal URL of an earlier
  // redirect, which a login that went through its consent page leaves
  // behind; then it shows its own sign-in form. Either way its SSO session
  // is over, and that is what the lane checks.
  await page.locator('#signed-out, input[name="user"]').first().waitFor()
  await shot('after-op-logout')
  t.ok(page.url() === `${base}/` || page.url().startsWith(op.issuer), 'logged out', {
    page: await pageText(page),
  })
  await page.goto(base)
  await page.locator('#signed-out').waitFor()
  await page.click('#login')
  await page.locator('input[name="user"]').waitFor()
  t.ok(page.url().startsWith(op.issuer), 'signing in again asks for the password: the OP session is over')
  await page.goto(base)
  await page.locator('#signed-out').waitFor()
  const after = await page.evaluate(
    async () => (await fetch('/api/orders', { headers: { 'x-csrf': '1' } })).status,
  )
  t.equal(after, 401, 'the API answers 401 after logout')
}

async function deletedRefreshToken(t: Test, lane: Lane): Promise<void> {
  const { op, clock } = lane
  const user = { login: 'rtyler', password: 'rtyler' }
  const context = await lane.browser.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  const shot = screenshots(page, 'deleted-refresh-token')
  if (!(await signIn(t, page, lane, user))) return
  await page.click('#call-user')
  await page.locator('#calls tbody tr[data-status="200"]').first().waitFor()

  // The administrator removes the user's refresh token from the OP's
  // session store with LemonLDAP::NG's own CLI.
  const theirs = (await op.refreshTokens()).filter(
    (rt) => rt.user === user.login && rt.clientId === CLIENT_ID,
  )
  t.equal(theirs.length, 1, 'the OP holds one refresh token for the session')
  await op.deleteSessions(theirs.map((rt) => rt.id))
  t.same(
    (await op.refreshTokens()).filter((rt) => rt.user === user.login),
    [],
    'and none once the administrator deleted it',
  )

  clock.advance((ACCESS_TOKEN_TTL + 1) * 1000)
  const unavailableBefore = await metricSum(
    lane.metricsPort,
    'gatehouse_token_refreshes_total',
    'outcome="unavailable"',
  )
  const tokenCallsBefore = tokenCalls(op).length
  const api = await page.evaluate(async () => {
    const response = await fetch('/api/orders', { headers: { 'x-csrf': '1' } })
    return {
      status: response.status,
      retryAfter: response.headers.get('retry-after'),
      body: await response.text(),
    }
  })
  t.equal(api.status, 401, 'the next API call gets 401', { body: api.body })
  t.match(JSON.parse(api.body), { error: 'session_expired' })
  t.equal(api.retryAfter, null, 'with nothing to retry')
  t.same(
    tokenCalls(op).slice(tokenCallsBefore),
    ['POST /oauth2/token 400'],
    'after one refused refresh at the OP',
  )
  t.equal(
    (await metricSum(lane.metricsPort, 'gatehouse_token_refreshes_total', 'outcome="unavailable"')) -
      unavailableBefore,
    0,
    'which the gateway did not count as an outage',
  )
  const user401 = await page.evaluate(
    async () => (await fetch('/auth/user', { headers: { 'x-csrf': '1' } })).status,
  )
  t.equal(user401, 401, '/auth/user answers 401 too')
  const again = await page.evaluate(
    async () => (await fetch('/api/orders', { headers: { 'x-csrf': '1' } })).status,
  )
  t.equal(again, 401, 'and so does the call after, without asking the OP again')
  t.equal(tokenCalls(op).length - tokenCallsBefore, 1, 'one refresh attempt in all')

  // The SPA wrapper sends the user to sign in again on 401: not stuck.
  await page.click('#call-user')
  const backAtOp = await page
    .waitForURL((url) => url.href.startsWith(`${op.issuer}oauth2/authorize`), { timeout: 10_000 })
    .then(
      () => true,
      () => false,
    )
  t.ok(backAtOp, 'the SPA sent the user back to the OP to sign in', { page: await pageText(page) })
  await shot('back-at-the-op')
}

/**
 * Refusals of a refresh token in shapes LemonLDAP::NG never uses, as other
 * OPs and proxies in front of them give them: each says the grant is gone
 * as plainly as a 400 `invalid_grant` in JSON does. Read as an outage, each
 * kept the session on 503 `token_refresh_unavailable` until
 * tokens.unavailableLimit, logged with no word of the OAuth error.
 */
const OTHER_SHAPES: readonly { readonly name: string; readonly answer: CannedTokenAnswer }[] = [
  {
    // GitHub's token endpoint answers its errors so (bad_refresh_token, bad_verification_code).
    name: 'an OAuth error in a 200 instead of tokens',
    answer: {
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({ error: 'invalid_grant', error_description: 'the refresh token was revoked' }),
    },
  },
  {
    name: 'a 400 whose OAuth error in JSON is labelled text/html',
    answer: {
      status: 400,
      contentType: 'text/html',
      body: JSON.stringify({ error: 'invalid_grant', error_description: 'the refresh token was revoked' }),
    },
  },
]

async function errorsInOtherShapes(t: Test, lane: Lane): Promise<void> {
  const { op, clock } = lane
  for (const { name, answer } of OTHER_SHAPES) {
    await t.test(name, async (t) => {
      const context = await lane.browser.newContext()
      t.teardown(() => context.close())
      const page = await context.newPage()
      if (!(await signIn(t, page, lane, { login: 'msmith', password: 'msmith' }))) return
      await op.answerTokenRequests(answer)
      t.teardown(() => op.answerTokenRequests(undefined))

      clock.advance((ACCESS_TOKEN_TTL + 1) * 1000)
      const counted = (outcome: string) =>
        metricSum(lane.metricsPort, 'gatehouse_token_refreshes_total', `outcome="${outcome}"`)
      const [endedBefore, unavailableBefore] = [await counted('invalid_grant'), await counted('unavailable')]
      const tokenCallsBefore = tokenCalls(op).length
      const api = await page.evaluate(async () => {
        const response = await fetch('/api/orders', { headers: { 'x-csrf': '1' } })
        return { status: response.status, body: await response.text() }
      })
      t.equal(api.status, 401, 'the next API call gets 401', { body: api.body })
      t.match(JSON.parse(api.body), { error: 'session_expired' })
      t.same(
        tokenCalls(op).slice(tokenCallsBefore),
        [`POST /oauth2/token ${answer.status}`],
        'after one refresh the OP refused',
      )
      t.equal((await counted('invalid_grant')) - endedBefore, 1, 'counted as the invalid_grant it says')
      t.equal((await counted('unavailable')) - unavailableBefore, 0, 'and not as an outage')
    })
  }
}

/** Calls `/api/orders` `n` times at once from the page: each answer's status, with its error if it has one. */
function burst(page: Page, n: number): Promise<string[]> {
  return page.evaluate(
    (n) =>
      Promise.all(
        Array.from({ length: n }, async () => {
          const response = await fetch('/api/orders', { headers: { 'x-csrf': '1' } })
          if (response.ok) return String(response.status)
          return `${response.status} ${((await response.json()) as { error?: string }).error}`
        }),
      ),
    n,
  )
}

/**
 * Without `prompt=consent` LemonLDAP::NG drops `offline_access` (OIDC Core
 * §11) and issues an online refresh token, tied to its SSO session: it
 * refreshes like the offline one until the user signs out at the OP, and
 * is then refused with `400 invalid_grant`.
 */
async function onlineRefreshToken(t: Test, lane: Lane): Promise<void> {
  const { op, base, clock } = lane
  const user = { login: 'msmith', password: 'msmith' }
  const context = await lane.browser.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  // auth.loginParams passes prompt through, in place of the configured consent.
  await page.goto(`${base}/auth/login?prompt=login`)
  await page.locator('input[name="user"]').waitFor()
  await page.fill('input[name="user"]', user.login)
  await page.fill('input[name="password"]', user.password)
  const back = page.waitForURL((url) => url.origin === base, { timeout: 15_000 })
  await page.click('button[type="submit"]')
  // This user's consent is kept from an earlier test, or asked for now.
  const consent = page.locator('button.positive')
  await Promise.race([
    back,
    consent.waitFor({ timeout: 15_000 }).then(
      () => consent.click(),
      () => {},
    ),
  ])
  await back
  const me = await page.evaluate(async () => {
    const response = await fetch('/auth/user', { headers: { 'x-csrf': '1' } })
    return { status: response.status, body: await response.text() }
  })
  t.equal(me.status, 200, 'signed in', { body: me.body, op: op.log().slice(-2_000) })
  t.match(JSON.parse(me.body), { sub: user.login, refreshable: true }, 'with a refresh token')

  clock.advance((ACCESS_TOKEN_TTL + 1) * 1000)
  const counted = (outcome: string) =>
    metricSum(lane.metricsPort, 'gatehouse_token_refreshes_total', `outcome="${outcome}"`)
  let before = tokenCalls(op).length
  const statuses = await burst(page, 50)
  t.same(new Set(statuses), new Set(['200']), '50 calls on an expired access token all get 200')
  t.same(tokenCalls(op).slice(before), ['POST /oauth2/token 200'], 'with one refresh at the OP')

  // The user signs out at LemonLDAP::NG itself, as from another application.
  // LemonLDAP::NG's own logout link: its SSO session ends when the page has loaded.
  await page.goto(`${op.issuer}?logout=1`)
  await page.goto(`${base}/`)
  clock.advance((ACCESS_TOKEN_TTL + 1) * 1000)
  const [endedBefore, unavailableBefore] = [await counted('invalid_grant'), await counted('unavailable')]
  before = tokenCalls(op).length
  const after = await burst(page, 10)
  // A call the browser sent once the refusal had ended the session finds none.
  t.ok(
    after.every((answer) => answer === '401 session_expired' || answer === '401 unauthenticated'),
    'every call gets 401 once the SSO session is over',
    { after },
  )
  t.ok(after.includes('401 session_expired'), 'the ones that waited on the refresh saying the session ended')
  t.same(tokenCalls(op).slice(before), ['POST /oauth2/token 400'], 'after one refresh the OP refused')
  t.equal((await counted('invalid_grant')) - endedBefore, 1, 'counted as invalid_grant')
  t.equal((await counted('unavailable')) - unavailableBefore, 0, 'and not as an outage')
}

/**
 * LemonLDAP::NG answers a code it does not know (forged, already used or
 * past its 60 s) with `400 invalid_grant`: the sign-in page says the IdP
 * refused the login, and names the error.
 */
async function refusedCode(t: Test, lane: Lane): Promise<void> {
  const { op, base } = lane
  const context = await lane.browser.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  // Hold the OP's redirect to the callback, to send another code instead.
  let callback: URL | undefined
  await page.route(`${op.issuer}oauth2/authorize**`, async (route) => {
    const response = await route.fetch({ maxRedirects: 0 })
    const location = response.headers().location
    if (location?.startsWith(`${base}/auth/callback`)) {
      callback = new URL(location)
      await route.fulfill({ status: 200, contentType: 'text/plain', body: 'held' })
    } else await route.fulfill({ response })
  })
  await page.goto(`${base}/auth/login`)
  await page.locator('input[name="user"]').waitFor()
  await page.fill('input[name="user"]', DEMO_USER.login)
  await page.fill('input[name="password"]', DEMO_USER.password)
  await page.click('button[type="submit"]')
  const consent = page.locator('button.positive')
  const held = page.waitForFunction(() => document.body?.textContent === 'held', undefined, {
    timeout: 15_000,
  })
  await Promise.race([
    held,
    consent.waitFor({ timeout: 15_000 }).then(
      () => consent.click(),
      () => {},
    ),
  ])
  await held
  if (!t.ok(callback, 'the OP sent the browser back with a code')) return
  callback!.searchParams.set('code', 'a-code-the-op-never-issued')
  const before = tokenCalls(op).length
  const answer = await page.goto(callback!.href)
  t.equal(answer?.status(), 400, 'the callback answers 400')
  t.match(await page.textContent('body'), /refused the login \(invalid_grant\)/, "naming the IdP's error")
  t.same(tokenCalls(op).slice(before), ['POST /oauth2/token 400'], 'which the OP gave the code exchange')
}

/**
 * LemonLDAP::NG grants a client-credentials token for the scopes asked, and
 * refuses a request that asks for none with `400 invalid_scope` (RFC 6749
 * §4.4.2 makes `scope` optional): the route says so, and asks again only
 * after REFUSAL_MEMORY.
 */
async function clientCredentials(t: Test, lane: Lane): Promise<void> {
  const { op, base } = lane
  let before = tokenCalls(op).length
  const scoped = await Promise.all(
    Array.from({ length: 10 }, () => fetch(`${base}/api/reports`, { headers: { 'x-csrf': '1' } })),
  )
  t.same(
    scoped.map((r) => r.status),
    Array(10).fill(200),
    'a route with scopes gets a client token',
  )
  t.match(
    await scoped[0]!.json(),
    { token: { client_id: CLIENT_ID, scope: 'reports' } },
    'one the OP says is active, for the scopes asked',
  )
  t.same(tokenCalls(op).slice(before), ['POST /oauth2/token 200'], 'fetched once')

  before = tokenCalls(op).length
  const unscoped = await Promise.all(
    Array.from({ length: 2 }, () => fetch(`${base}/api/unscoped`, { headers: { 'x-csrf': '1' } })),
  )
  for (const response of unscoped) {
    t.equal(response.status, 403, 'a route without scopes is refused')
    t.match(await response.json(), { error: 'client_token_refused', message: /\(invalid_scope\)/ })
  }
  t.same(tokenCalls(op).slice(before), ['POST /oauth2/token 400'], 'after one request the OP refused')
}

/**
 * Signs `user` in at a relying party's gateway (no SPA: its own
 * `/auth/login`), through the login form and the consent LemonLDAP::NG
 * asks once per user and relying party. Resolves with the page, back at
 * the gateway or on its sign-in page.
 */
async function signInAt(
  t: Test,
  lane: Lane,
  at: string,
  user: { login: string; password: string } = DEMO_USER,
): Promise<Page> {
  const context = await lane.browser.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  await page.goto(`${at}/auth/login`)
  await page.locator('input[name="user"]').waitFor()
  await page.fill('input[name="user"]', user.login)
  await page.fill('input[name="password"]', user.password)
  const back = page.waitForURL((url) => url.origin === at, { timeout: 15_000 })
  await page.click('button[type="submit"]')
  const consent = page.locator('button.positive')
  await Promise.race([
    back,
    consent.waitFor({ timeout: 15_000 }).then(
      () => consent.click(),
      () => {},
    ),
  ])
  await back
  return page
}

/** `/auth/user` from the page's origin: its status and body. */
async function whoAmI(page: Page): Promise<{ status: number; body: string }> {
  return page.evaluate(async () => {
    const response = await fetch('/auth/user', { headers: { 'x-csrf': '1' } })
    return { status: response.status, body: await response.text() }
  })
}

/** An API call from the page's origin: its status. */
function apiStatus(page: Page): Promise<number> {
  return page.evaluate(async () => (await fetch('/api/orders', { headers: { 'x-csrf': '1' } })).status)
}

/**
 * LemonLDAP::NG signs ID tokens HS512 with the client secret unless told
 * otherwise, and can sign userinfo; its JWKS holds one key, so a rotation
 * takes the old key out at once. The gateway reads both from the OP over
 * its own connection (OIDC Core §3.1.3.7 item 6): a session outlives a
 * rotation, and a sign-in after it works.
 */
async function signatures(t: Test, lane: Lane): Promise<void> {
  const { op, clock, parties } = lane
  await t.test("HS512 ID tokens, LemonLDAP::NG's default", async (t) => {
    const page = await signInAt(t, lane, parties.hs512)
    const me = await whoAmI(page)
    t.equal(me.status, 200, 'signed in', { body: me.body, op: op.log().slice(-2_000) })
    t.match(JSON.parse(me.body), {
      sub: DEMO_USER.login,
      claims: { name: DEMO_USER.name },
      refreshable: true,
    })
    clock.advance((ACCESS_TOKEN_TTL + 1) * 1000)
    const before = tokenCalls(op).length
    t.equal(await apiStatus(page), 200, 'an API call past the access token refreshes')
    t.same(
      tokenCalls(op).slice(before),
      ['POST /oauth2/token 200'],
      'once, with an HS512 ID token in the answer',
    )
  })
  await t.test('RS512 ID tokens and userinfo, through a key rotation', async (t) => {
    const page = await signInAt(t, lane, parties['signed-userinfo'])
    const me = await whoAmI(page)
    t.equal(me.status, 200, 'signed in', { body: me.body, op: op.log().slice(-2_000) })
    t.match(
      JSON.parse(me.body),
      { sub: DEMO_USER.login, claims: { name: DEMO_USER.name } },
      'the name from the signed userinfo',
    )
    const kid = await op.rotateSigningKey()
    t.comment(`LemonLDAP::NG now signs with ${kid}`)
    clock.advance((ACCESS_TOKEN_TTL + 1) * 1000)
    const before = tokenCalls(op).length
    t.equal(await apiStatus(page), 200, 'the session refreshes past the rotation')
    t.same(tokenCalls(op).slice(before), ['POST /oauth2/token 200'], 'once')
    const again = await whoAmI(
      await signInAt(t, lane, parties['signed-userinfo'], { login: 'rtyler', password: 'rtyler' }),
    )
    t.equal(again.status, 200, 'a sign-in after it reads userinfo signed with the new key', {
      body: again.body,
    })
    t.match(JSON.parse(again.body), { sub: 'rtyler' })
  })
}

/**
 * LemonLDAP::NG writes an unsigned JWT (`alg: none`, which it advertises
 * for ID tokens and userinfo) as `header.payload`, without the final `.`
 * of RFC 7519 §6.1. The sign-in fails, and its page says what was
 * unsigned: it said "Invalid JWT", naming neither.
 */
async function unsignedJwts(t: Test, lane: Lane): Promise<void> {
  const { op, parties } = lane
  for (const [name, what] of [
    ['unsigned-id-token', 'the ID token'],
    ['unsigned-userinfo', 'the userinfo answer'],
  ] as const) {
    await t.test(name, async (t) => {
      const page = await signInAt(t, lane, parties[name])
      t.match(new URL(page.url()).pathname, '/auth/callback', 'the sign-in ends at the callback')
      t.match(
        await page.textContent('body'),
        `${what} is unsigned (alg "none") and in two parts`,
        'whose page names what was unsigned',
        { op: op.log().slice(-2_000) },
      )
      // The page's CSP lets it fetch nothing: ask with the context's cookies instead.
      const me = await page.request.get(`${parties[name]}/auth/user`, { headers: { 'x-csrf': '1' } })
      t.equal(me.status(), 401, 'with no session')
    })
  }
}

/**
 * Two replicas of one gateway behind one public URL, sharing sessions in a
 * real redis-server: a storm split over both on an expired access token
 * redeems the refresh token once at LemonLDAP::NG (the cluster lock), and
 * a logout at one ends the session at the other.
 */
async function replicas(t: Test, lane: Lane): Promise<void> {
  const { op, clock, parties } = lane
  const first = await signInAt(t, lane, parties.replicas, { login: 'rtyler', password: 'rtyler' })
  t.equal((await whoAmI(first)).status, 200, 'signed in at the first replica')
  // Host-only cookies for 127.0.0.1 go to every port: the second replica gets the same session.
  const second = await first.context().newPage()
  await second.goto(`${parties.replica2}/auth/user`)
  t.equal((await whoAmI(second)).status, 200, 'which the second replica finds in Redis')

  clock.advance((ACCESS_TOKEN_TTL + 1) * 1000)
  const before = tokenCalls(op).length
  const storm = await Promise.all([burst(first, 25), burst(second, 25)])
  t.same(new Set(storm.flat()), new Set(['200']), '50 calls over both replicas all get 200')
  t.same(tokenCalls(op).slice(before), ['POST /oauth2/token 200'], 'with one refresh at the OP')

  const { logoutUrl } = JSON.parse((await whoAmI(first)).body) as { logoutUrl: string }
  await first.goto(new URL(logoutUrl, parties.replicas).href)
  t.equal(await apiStatus(second), 401, 'a logout at the first replica ends the session at the second')
}

/**
 * LemonLDAP::NG 2.16 ignores `scope` and `resource` on a refresh-token
 * grant (its answer has no `scope`, which RFC 6749 §5.1 reads as the scope
 * asked): a down-scoped route (`scopes`) and a resource route (RFC 8707)
 * get a token with the session's scopes and no audience, which nothing in
 * the answer lets the gateway see. It has no token exchange and refuses
 * the grant with `400 invalid_request`: the route answers 403 naming it,
 * and the session stays.
 */
async function narrowedTokens(t: Test, lane: Lane): Promise<void> {
  const { op, parties } = lane
  const page = await signInAt(t, lane, parties.narrowed)
  t.equal((await whoAmI(page)).status, 200, 'signed in')
  const call = (path: string) =>
    page.evaluate(async (path) => {
      const response = await fetch(path, { headers: { 'x-csrf': '1' } })
      return { status: response.status, body: await response.text() }
    }, path)
  const scopeOf = (body: string) => (JSON.parse(body) as { token?: { scope?: string } }).token?.scope

  let before = tokenCalls(op).length
  const profile = await call('/api/profile')
  t.equal(profile.status, 200, 'a route with scopes gets a token')
  t.equal(scopeOf(profile.body), 'openid profile', "with the session's scopes, not the route's alone")
  const resource = await call('/api/resource')
  t.equal(resource.status, 200, 'a route with a resource gets a token')
  t.notOk((JSON.parse(resource.body) as { token?: { aud?: unknown } }).token?.aud, 'with no audience')
  t.same(tokenCalls(op).slice(before), ['POST /oauth2/token 200', 'POST /oauth2/token 200'], 'a refresh each')

  before = tokenCalls(op).length
  const exchanged = await call('/api/exchanged')
  t.equal(exchanged.status, 403, 'an exchange route is refused')
  t.match(JSON.parse(exchanged.body), { error: 'token_exchange_refused', message: /\(invalid_request\)/ })
  t.same(tokenCalls(op).slice(before), ['POST /oauth2/token 400'], 'after one request the OP refused')
  t.equal((await call('/api/orders')).status, 200, 'and the session stays')
}

/**
 * LemonLDAP::NG 2.16 has no back-channel logout, and an offline refresh
 * token is not tied to its SSO session: a sign-out at the portal (from
 * another application) leaves the Gatehouse session refreshing, as the
 * recipe says.
 */
async function offlineOutlivesOpLogout(t: Test, lane: Lane): Promise<void> {
  const { op, base, clock } = lane
  const context = await lane.browser.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  if (!(await signIn(t, page, lane, { login: 'rtyler', password: 'rtyler' }))) return
  await page.goto(`${op.issuer}?logout=1`)
  await page.goto(`${base}/`)
  clock.advance((ACCESS_TOKEN_TTL + 1) * 1000)
  const before = tokenCalls(op).length
  const answer = await page.evaluate(async () => {
    const response = await fetch('/api/orders', { headers: { 'x-csrf': '1' } })
    return { status: response.status, body: await response.text() }
  })
  t.equal(answer.status, 200, 'an API call past the access token after the sign-out at the OP', {
    body: answer.body.slice(0, 500),
    op: op.log().slice(-2_000),
  })
  t.same(tokenCalls(op).slice(before), ['POST /oauth2/token 200'], 'after one refresh')
  const me = await whoAmI(page)
  t.equal(me.status, 200, 'the session goes on')
}

/**
 * LemonLDAP::NG's session cookie is `SameSite=Lax` by default. From a
 * gateway on another site, the default logout (`auth.endSession: post`, a
 * form POST so the ID token is in no URL) reaches its end-session endpoint
 * without that cookie: it takes the user for signed out already, sends the
 * browser back, and its session lives on, so the next sign-in asks for no
 * password. Gatehouse cannot see it; `check --online` warns of it
 * (lemonldap-check-online.test.ts). `auth.endSession: get` is a top-level
 * GET, which carries the cookie: LemonLDAP::NG asks for confirmation and
 * ends its session.
 */
async function crossSiteLogout(t: Test, lane: Lane): Promise<void> {
  const { op, parties } = lane
  /** Signs in, logs out at the gateway, and says whether signing in again asks for the password. */
  const logoutThenSignIn = async (t: Test, at: string, confirm: boolean) => {
    const page = await signInAt(t, lane, at, { login: 'msmith', password: 'msmith' })
    const me = await whoAmI(page)
    t.equal(me.status, 200, 'signed in', { body: me.body })
    const { logoutUrl } = JSON.parse(me.body) as { logoutUrl: string }
    await page.goto(new URL(logoutUrl, at).href)
    if (confirm) {
      await page.locator('button.positive').waitFor()
      t.ok(page.url().startsWith(`${op.issuer}oauth2/logout`), 'LemonLDAP::NG asks to confirm the logout')
      await page.click('button.positive')
    }
    await page.waitForLoadState('networkidle')
    t.equal(
      (await page.request.get(`${at}/auth/user`, { headers: { 'x-csrf': '1' } })).status(),
      401,
      'the gateway session is over',
    )
    await page.goto(`${at}/auth/login`)
    const form = page.locator('input[name="user"]')
    const consent = page.locator('button.positive')
    await Promise.race([form.waitFor(), consent.waitFor()])
    return form.isVisible()
  }
  await t.test('by POST, the default', async (t) => {
    t.notOk(
      await logoutThenSignIn(t, parties['cross-site'], false),
      "LemonLDAP::NG's session lives on: signing in again asks for no password",
    )
  })
  await t.test('by GET (auth.endSession: get)', async (t) => {
    t.ok(await logoutThenSignIn(t, parties['cross-site-get'], true), 'signing in again asks for the password')
  })
}

/**
 * A user who refuses consent at LemonLDAP::NG 2.16 comes back with
 * `error=consent_required`, the error OIDC Core §3.1.2.6 gives
 * `prompt=none`, where RFC 6749 §4.1.2.1 has `access_denied`: the gateway
 * takes it as an interaction error and sends the browser back to
 * `returnTo` with it, signed out.
 */
async function refusedConsent(t: Test, lane: Lane): Promise<void> {
  const at = lane.parties.hs512
  const context = await lane.browser.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  await page.goto(`${at}/auth/login`)
  await page.locator('input[name="user"]').waitFor()
  await page.fill('input[name="user"]', DEMO_USER.login)
  await page.fill('input[name="password"]', DEMO_USER.password)
  await page.click('button[type="submit"]')
  await page.locator('#refuse').waitFor()
  await Promise.all([page.waitForURL((url) => url.origin === at, { timeout: 15_000 }), page.click('#refuse')])
  await page.waitForURL((url) => url.pathname !== '/auth/callback', { timeout: 10_000 })
  const back = new URL(page.url())
  t.equal(back.pathname, '/', 'back at returnTo')
  t.equal(back.searchParams.get('error'), 'consent_required', 'with the error LemonLDAP::NG gave')
  const me = await page.request.get(`${at}/auth/user`, { headers: { 'x-csrf': '1' } })
  t.equal(me.status(), 401, 'and no session')
}

/**
 * `prompt=none` without an SSO session shows LemonLDAP::NG 2.16's login
 * form instead of answering `login_required` (OIDC Core §3.1.2.6): a
 * silent check stays at the portal, and signing in there completes the
 * login for a user who consented before (here at the replicas' relying
 * party), as the quirks matrix's `promptNoneShowsLogin` row says.
 */
async function promptNone(t: Test, lane: Lane): Promise<void> {
  const at = lane.parties.replicas
  const context = await lane.browser.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  await page.goto(`${at}/auth/login?prompt=none`)
  await page.locator('input[name="user"]').waitFor()
  t.ok(page.url().startsWith(`${lane.op.issuer}oauth2/authorize`), 'the browser stays at the login form')
  await page.fill('input[name="user"]', 'rtyler')
  await page.fill('input[name="password"]', 'rtyler')
  await Promise.all([
    page.waitForURL((url) => url.origin === at, { timeout: 15_000 }),
    page.click('button[type="submit"]'),
  ])
  const me = await page.request.get(`${at}/auth/user`, { headers: { 'x-csrf': '1' } })
  t.equal(me.status(), 200, 'signing in there completes the login', { url: new URL(page.url()).pathname })
  t.match(await me.json(), { sub: 'rtyler' })
}

import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { startDevIdp } from '../../dev/idp.js'
import { startEchoUpstream } from '../../dev/upstream.js'
import { parseConfig } from '../../src/config/load.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, CLIENT_SECRET, startGateway, testConfigRaw } from '../helpers/gateway.js'
import { apiCall, followLoginFlow, jarFetch } from '../helpers/login.js'
import { onFreePorts } from '../helpers/ports.js'
import { startRedis } from '../helpers/redis.js'
import { nextMessage, openSocket, type Refused, wsUpstream } from '../helpers/websocket.js'

/**
 * Three front doors on one gateway, one Redis and one real IdP: `staff` on
 * 127.0.0.1, `portal` under /portal on the same host (two SPAs on one
 * host), and `partners` on localhost. Whatever one frontend holds, a
 * cookie, a route, a returnTo, is nothing through another.
 */
const redis = await startRedis()
t.teardown(() => redis.stop())

async function setup(t: Test) {
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  const sockets = await wsUpstream(t)
  const keyPrefix = `${redis.prefix}fe${Math.random().toString(36).slice(2, 8)}:`
  const started = await onFreePorts(1, async ([port]) => {
    const staff = `http://127.0.0.1:${port}`
    const partners = `http://localhost:${port}`
    const idp = await startDevIdp({
      accessTokenTtl: 60,
      clients: [
        {
          clientId: CLIENT_ID,
          clientSecret: CLIENT_SECRET,
          redirectUris: [
            `${staff}/auth/callback`,
            `${staff}/portal/auth/callback`,
            `${partners}/signin/callback`,
          ],
          postLogoutRedirectUris: [`${staff}/`, `${staff}/portal/`, `${partners}/`],
          // One client, one back-channel URI: the staff frontend's.
          backchannelLogoutUri: `${staff}/auth/backchannel-logout`,
        },
      ],
    })
    const route = (path: string) => ({ path, upstream: upstream.url, timeout: '5s' })
    const raw = {
      ...testConfigRaw({ port: port!, issuer: idp.issuer, routes: [], store: redis.url, keyPrefix }),
      frontends: [
        {
          name: 'staff',
          host: '127.0.0.1',
          publicUrl: staff,
          routes: [route('/api/orders'), { path: '/live', upstream: sockets.url, websocket: true }],
        },
        {
          name: 'portal',
          host: '127.0.0.1',
          pathPrefix: '/portal',
          publicUrl: staff,
          routes: [route('/portal/api/orders')],
        },
        {
          name: 'partners',
          host: 'localhost',
          publicUrl: partners,
          auth: { basePath: '/signin' },
          routes: [route('/api/partner')],
        },
      ],
    }
    const config = parseConfig(JSON.stringify(raw), 'frontends test config')
    try {
      return { idp, gateway: await startGateway(config), staff, partners }
    } catch (err) {
      await idp.close()
      throw err
    }
  })
  t.teardown(async () => {
    await started.gateway.close()
    await started.idp.close()
  })
  const client = new Redis(redis.url)
  t.teardown(() => client.quit())
  return { ...started, portal: `${started.staff}/portal`, keyPrefix, client }
}

/** Signs in through a frontend's own sign-in path; returns the jar and where the callback sent the browser. */
async function signIn(base: string, basePath: string, jar = new CookieJar(), returnTo?: string) {
  const query = returnTo === undefined ? '' : `?returnTo=${encodeURIComponent(returnTo)}`
  const start = await jarFetch(jar, `${base}${basePath}/login${query}`)
  if (start.status !== 302 || !start.location) throw new Error(`${basePath}/login answered ${start.status}`)
  const callback = await jarFetch(jar, await followLoginFlow(jar, start.location, 'alice'))
  if (callback.status !== 302) throw new Error(`callback answered ${callback.status}: ${callback.text}`)
  return { jar, landed: callback.location }
}

/** A request with exactly these cookies and the anti-forgery header, and no jar. */
function withCookies(url: string, cookies: Record<string, string>) {
  const cookie = Object.entries(cookies)
    .map(([name, value]) => `${name}=${value}`)
    .join('; ')
  return apiCall(new CookieJar(), url, { headers: { cookie } })
}

t.test(
  'each frontend signs in with its own cookie, and a cookie of one is no session in another',
  async (t) => {
    const { staff, portal, partners } = await setup(t)
    // One browser: the IdP session is shared, each frontend's session is its own.
    const jar = new CookieJar()
    const staffLogin = await signIn(staff, '/auth', jar)
    t.equal(staffLogin.landed, `${staff}/`, 'staff lands on its own home')
    const portalLogin = await signIn(portal, '/auth', jar)
    t.equal(portalLogin.landed, `${portal}/`, "portal's default returnTo is its own home")
    await signIn(partners, '/signin', jar)

    const staffCookie = jar.get(staff, 'gatehouse-staff')
    const portalCookie = jar.get(staff, 'gatehouse-portal')
    t.ok(staffCookie && portalCookie, 'two SPAs on one host hold two cookies')
    t.not(staffCookie, portalCookie)
    t.ok(jar.get(partners, 'gatehouse-partners'), 'partners has its own')

    for (const [url, what] of [
      [`${staff}/auth/user`, 'staff'],
      [`${portal}/auth/user`, 'portal'],
      [`${partners}/signin/user`, 'partners'],
    ] as const) {
      const answer = await apiCall(jar, url)
      t.equal(answer.status, 200, `${what}: /user with its own cookie`)
      t.equal(answer.json().sub, 'alice')
    }
    t.equal((await apiCall(jar, `${staff}/api/orders`)).status, 200, 'a staff route with the staff session')
    t.equal(
      (await apiCall(jar, `${portal}/api/orders`)).status,
      200,
      'a portal route with the portal session',
    )
    t.equal((await apiCall(jar, `${partners}/api/partner`)).status, 200, 'a partners route')

    // A staff cookie carried to partners' host, under every name it might take there.
    const carried = { 'gatehouse-staff': staffCookie!, 'gatehouse-partners': staffCookie! }
    t.equal((await withCookies(`${partners}/signin/user`, carried)).status, 401, 'not a session on partners')
    t.equal((await withCookies(`${partners}/api/partner`, carried)).status, 401, "nor on partners' routes")
    // And to the other SPA on the same host, as that SPA's cookie.
    t.equal(
      (await withCookies(`${portal}/auth/user`, { 'gatehouse-portal': staffCookie! })).status,
      401,
      'a staff cookie under the portal name is no portal session',
    )
    t.equal(
      (await withCookies(`${portal}/api/orders`, { 'gatehouse-staff': staffCookie! })).status,
      401,
      'a portal route does not read the staff cookie',
    )
    t.equal(
      (await withCookies(`${staff}/auth/user`, { 'gatehouse-staff': staffCookie! })).status,
      200,
      'the same cookie, where it belongs, is a session (control)',
    )
  },
)

t.test("a route of one frontend is a 404 through another's host or prefix", async (t) => {
  const { staff, portal, partners } = await setup(t)
  const jar = new CookieJar()
  await signIn(staff, '/auth', jar)
  await signIn(partners, '/signin', jar)
  t.equal((await apiCall(jar, `${partners}/api/orders`)).status, 404, "staff's route through partners' host")
  t.equal((await apiCall(jar, `${staff}/api/partner`)).status, 404, "partners' route through staff's host")
  t.equal(
    (await apiCall(jar, `${partners}/portal/api/orders`)).status,
    404,
    "portal's route through partners",
  )
  t.equal((await apiCall(jar, `${partners}/auth/user`)).status, 404, "staff's sign-in path through partners")
  t.equal(
    (await apiCall(jar, `${portal}/auth/user`)).status,
    401,
    "portal's own /user, without a portal session",
  )
  t.equal((await apiCall(jar, `${staff}/api/orders`)).status, 200, 'the route where it belongs (control)')
  t.equal((await jarFetch(jar, `${partners}/healthz`)).status, 200, '/healthz answers on any host')
})

t.test('returnTo stays inside the frontend', async (t) => {
  const { staff, portal } = await setup(t)
  for (const [base, returnTo] of [
    [portal, '/api/orders'],
    [portal, '/'],
    [staff, '/portal/settings'],
    [staff, '//localhost/'],
    // A fragment or a query is no way into another frontend, nor off the origin.
    [portal, '/#/portal'],
    [portal, '/api/orders#/portal'],
    [portal, '/portals#/orders'],
    [portal, '/?/portal'],
    [staff, '/portal#/orders'],
    [portal, '//evil.example#/portal'],
    [portal, '/\\evil.example#/portal'],
    [portal, 'https://evil.example/portal#/orders'],
    [portal, '/..//evil.example/portal#x'],
  ] as const) {
    const answer = await jarFetch(
      new CookieJar(),
      `${base}/auth/login?returnTo=${encodeURIComponent(returnTo)}`,
    )
    t.equal(answer.status, 400, `${base}: returnTo ${returnTo} is refused`)
    t.match(answer.text, /invalid_return_to|not allowed|returnTo/i)
    t.equal(answer.location, undefined, 'and the browser is sent nowhere')
  }
  const inside = await signIn(portal, '/auth', new CookieJar(), '/portal/settings?tab=2')
  t.equal(inside.landed, `${staff}/portal/settings?tab=2`, 'a returnTo inside the frontend is kept')
  // A hash-routed SPA at the prefix itself: `#` and `?` end the prefix as `/` does.
  for (const returnTo of [
    '/portal#/orders',
    '/portal?tab=2',
    '/portal?tab=2#/orders',
    '/portal#@evil.example',
  ]) {
    const landed = await signIn(portal, '/auth', new CookieJar(), returnTo)
    t.equal(landed.landed, `${staff}${returnTo}`, `${returnTo} is the portal's, and kept`)
    t.equal(new URL(landed.landed!).origin, staff, `${returnTo}: on this origin`)
  }
})

t.test('one store: keys per frontend, and back-channel logout ends every frontend of the sid', async (t) => {
  const { idp, staff, portal, partners, keyPrefix, client } = await setup(t)
  const jar = new CookieJar()
  await signIn(staff, '/auth', jar)
  await signIn(portal, '/auth', jar)
  await signIn(partners, '/signin', jar)
  const keys = (await client.keys(`${keyPrefix}s:*`)).map((key) => key.slice(keyPrefix.length)).sort()
  t.equal(keys.length, 3, 'three sessions in the one store')
  t.match(keys, [/^s:\{partners:[\w-]+\}$/, /^s:\{portal:[\w-]+\}$/, /^s:\{staff:[\w-]+\}$/])

  const ended = await idp.endSession('alice')
  t.ok(ended.delivered >= 1, 'the IdP delivered a logout token to the staff frontend')
  t.equal(ended.failed, 0)
  t.equal((await apiCall(jar, `${staff}/auth/user`)).status, 401, 'staff session ended')
  t.equal((await apiCall(jar, `${portal}/auth/user`)).status, 401, 'portal session ended')
  t.equal((await apiCall(jar, `${partners}/signin/user`)).status, 401, 'partners session ended')
  t.same(await client.keys(`${keyPrefix}s:*`), [], 'no session left in the store')
})

t.test("a WebSocket route of one frontend opens there, and is a 404 through another's host", async (t) => {
  const { staff, partners } = await setup(t)
  const jar = new CookieJar()
  await signIn(staff, '/auth', jar)
  await signIn(partners, '/signin', jar)
  const socket = await openSocket(`${staff.replace(/^http/, 'ws')}/live`, {
    origin: staff,
    cookie: jar.header(`${staff}/`)!,
  })
  socket.send('hello')
  t.equal(String(await nextMessage(socket)), 'hello', 'through its own frontend')
  socket.close()
  const refused = await openSocket(`${partners.replace(/^http/, 'ws')}/live`, {
    origin: partners,
    cookie: jar.header(`${partners}/`)!,
  }).then(
    (opened) => {
      opened.close()
      return undefined
    },
    (err: Refused) => err,
  )
  t.equal(refused?.status, 404, 'the upgrade through partners finds no route')
})

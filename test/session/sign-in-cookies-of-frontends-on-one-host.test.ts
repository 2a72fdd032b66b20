import t, { type Test } from 'tap'
import { startDevIdp } from '../../dev/idp.js'
import { parseConfig } from '../../src/config/load.js'
import { PENDING_LOGIN_BYTES, PENDING_LOGINS_MAX } from '../../src/session/login-cookies.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, CLIENT_SECRET, startGateway, testConfigRaw } from '../helpers/gateway.js'
import { followLoginFlow, type JarResponse, jarFetch } from '../helpers/login.js'
import { onFreePorts } from '../helpers/ports.js'

/**
 * Several SPAs on one host (frontends told apart by `pathPrefix`) share
 * one cookie jar in the browser: every sign-in cookie of each, Path=/, goes
 * with every request to the host. Bounded per frontend, N frontends' piled
 * up to N × 4 KiB: past nginx's 8 KiB header line with two, and past
 * Node's 16 KiB (431 on every request, the callback included) with four.
 * Any site can start sign-ins with top-level navigations to `/login`.
 */
const PREFIXES = ['', '/portal', '/shop'] as const

async function setup(t: Test) {
  const started = await onFreePorts(1, async ([port]) => {
    const origin = `http://127.0.0.1:${port}`
    const idp = await startDevIdp({
      clients: [
        {
          clientId: CLIENT_ID,
          clientSecret: CLIENT_SECRET,
          redirectUris: PREFIXES.map((prefix) => `${origin}${prefix}/auth/callback`),
          postLogoutRedirectUris: PREFIXES.map((prefix) => `${origin}${prefix}/`),
        },
      ],
    })
    const raw = {
      ...testConfigRaw({ port: port!, issuer: idp.issuer, routes: [] }),
      frontends: PREFIXES.map((prefix) => ({
        name: prefix === '' ? 'root' : prefix.slice(1),
        host: '127.0.0.1',
        ...(prefix === '' ? {} : { pathPrefix: prefix }),
        publicUrl: origin,
      })),
    }
    try {
      const gateway = await startGateway(parseConfig(JSON.stringify(raw), 'frontends on one host'))
      return { idp, gateway, origin }
    } catch (err) {
      await idp.close()
      throw err
    }
  })
  t.teardown(async () => {
    await started.gateway.close()
    await started.idp.close()
  })
  return started
}

/** The sign-in cookies of every frontend that the jar sends to the host, `name=value` each. */
function signInCookies(jar: CookieJar, origin: string): string[] {
  return (jar.header(origin) ?? '').split('; ').filter((pair) => /^gatehouse-\w+-login\./.test(pair))
}

async function start(jar: CookieJar, origin: string, prefix: string, returnTo: string): Promise<JarResponse> {
  const url = `${origin}${prefix}/auth/login?returnTo=${encodeURIComponent(`${prefix}${returnTo}`)}`
  const res = await jarFetch(jar, url)
  if (res.status !== 302 || !res.location) throw new Error(`${url} answered ${res.status}`)
  return res
}

t.test(
  "the sign-ins in progress of every frontend on a host together stay within one cookie's worth",
  async (t) => {
    const { origin } = await setup(t)
    const jar = new CookieJar()
    const long = `/${'x'.repeat(1500)}`
    let newest: JarResponse | undefined
    let newestPrefix = ''
    for (const prefix of PREFIXES) {
      for (const returnTo of [long, '/a']) {
        newest = await start(jar, origin, prefix, returnTo)
        newestPrefix = prefix
        const bytes = signInCookies(jar, origin).join('; ').length
        t.ok(bytes <= PENDING_LOGIN_BYTES, `after ${prefix || '/'}${returnTo.slice(0, 4)}: ${bytes} bytes`)
      }
    }
    const done = await jarFetch(jar, await followLoginFlow(jar, newest!.location!, 'alice'))
    t.equal(done.status, 302, 'the newest sign-in completes')
    t.equal(done.location, `${origin}${newestPrefix}/a`)
  },
)

t.test("sign-ins of two frontends that fit together keep each other's cookies", async (t) => {
  const { origin } = await setup(t)
  const jar = new CookieJar()
  const root = await start(jar, origin, '', '/a')
  const portal = await start(jar, origin, '/portal', '/b')
  t.equal(signInCookies(jar, origin).length, 2, 'both pending')
  const doneRoot = await jarFetch(jar, await followLoginFlow(jar, root.location!, 'alice'))
  t.equal(doneRoot.location, `${origin}/a`, "the first frontend's completes")
  const donePortal = await jarFetch(jar, await followLoginFlow(jar, portal.location!, 'alice'))
  t.equal(donePortal.location, `${origin}/portal/b`, "and the second's")
  t.same(signInCookies(jar, origin), [], 'none left')
})

t.test("one frontend's count of sign-ins does not clear another's that fits", async (t) => {
  const { origin } = await setup(t)
  const jar = new CookieJar()
  const portal = await start(jar, origin, '/portal', '/b')
  // One more than a frontend may have pending: the root's oldest goes.
  for (let i = 0; i <= PENDING_LOGINS_MAX; i++) await start(jar, origin, '', `/a${i}`)
  const pending = signInCookies(jar, origin)
  t.ok(pending.join('; ').length <= PENDING_LOGIN_BYTES, `${pending.join('; ').length} bytes`)
  t.equal(pending.filter((pair) => pair.startsWith('gatehouse-root-login.')).length, PENDING_LOGINS_MAX)
  const done = await jarFetch(jar, await followLoginFlow(jar, portal.location!, 'alice'))
  t.equal(done.location, `${origin}/portal/b`, "the other frontend's sign-in completes")
})

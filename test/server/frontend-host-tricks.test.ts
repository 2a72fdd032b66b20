import { request } from 'node:http'
import t, { type Test } from 'tap'
import { startDevIdp } from '../../dev/idp.js'
import { startEchoUpstream } from '../../dev/upstream.js'
import { parseConfig } from '../../src/config/load.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, CLIENT_SECRET, startGateway, testConfigRaw } from '../helpers/gateway.js'
import { followLoginFlow, jarFetch } from '../helpers/login.js'
import { onFreePorts } from '../helpers/ports.js'

/**
 * A user with a session at one frontend (`staff` on 127.0.0.1) spells the
 * Host, the request target and X-Forwarded-Host as no browser would, to
 * reach another's (`partners` on localhost) routes or sign-in endpoints
 * with it. Each spelling is sent on a raw socket, exactly as written.
 */
async function setup(t: Test, trustProxy = false) {
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  const started = await onFreePorts(1, async ([port]) => {
    const staff = `http://127.0.0.1:${port}`
    const partners = `http://localhost:${port}`
    const idp = await startDevIdp({
      accessTokenTtl: 60,
      clients: [
        {
          clientId: CLIENT_ID,
          clientSecret: CLIENT_SECRET,
          redirectUris: [`${staff}/auth/callback`, `${partners}/signin/callback`],
          postLogoutRedirectUris: [`${staff}/`, `${partners}/`],
        },
      ],
    })
    const route = (path: string) => ({ path, upstream: upstream.url, timeout: '5s' })
    const raw = {
      ...testConfigRaw({ port: port!, issuer: idp.issuer, routes: [], trustProxy }),
      frontends: [
        { name: 'staff', host: '127.0.0.1', publicUrl: staff, routes: [route('/api/orders')] },
        {
          name: 'partners',
          host: 'localhost',
          publicUrl: partners,
          auth: { basePath: '/signin' },
          routes: [route('/api/partner')],
        },
      ],
    }
    const config = parseConfig(JSON.stringify(raw), 'host tricks test config')
    try {
      return { idp, gateway: await startGateway(config), staff, partners, port: port! }
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

/** One request on a raw socket: `target` and every header exactly as given. */
function raw(port: number, target: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'GET', path: target, headers, setHost: false })
    req.on('response', (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('a staff session reaches no partners route by any spelling of the host or target', async (t) => {
  const { staff, port } = await setup(t)
  const jar = new CookieJar()
  const start = await jarFetch(jar, `${staff}/auth/login`)
  const callback = await jarFetch(jar, await followLoginFlow(jar, start.location!, 'alice'))
  t.equal(callback.status, 302, 'signed in at staff')
  const value = jar.get(staff, 'gatehouse-staff')!
  // The staff cookie under both frontends' names: whichever one a frontend reads.
  const cookie = `gatehouse-staff=${value}; gatehouse-partners=${value}`
  const api = { cookie, 'x-csrf': '1' }

  t.equal(await raw(port, '/api/orders', { ...api, host: `127.0.0.1:${port}` }), 200, 'control: staff route')
  t.equal(await raw(port, '/auth/user', { ...api, host: `127.0.0.1:${port}` }), 200, 'control: staff /user')
  t.equal(await raw(port, '/auth/user', { ...api, host: '127.0.0.1:1' }), 200, 'any port is the same host')

  // partners' host in any case and with any port: partners' own, where the staff cookie is no session.
  for (const host of [`localhost:${port}`, 'LOCALHOST', 'localhost', 'localhost:']) {
    t.equal(await raw(port, '/signin/user', { ...api, host }), 401, `${host}: /signin/user`)
    t.equal(await raw(port, '/api/partner', { ...api, host }), 401, `${host}: partners route`)
    t.equal(await raw(port, '/api/orders', { ...api, host }), 404, `${host}: staff route is not there`)
  }
  // A trailing dot is a name no frontend has: nobody's routes.
  for (const host of [`localhost.:${port}`, `127.0.0.1.:${port}`]) {
    for (const path of ['/signin/user', '/api/partner', '/auth/user', '/api/orders']) {
      t.equal(await raw(port, path, { ...api, host }), 404, `${host} ${path}`)
    }
  }
  // X-Forwarded-Host without server.trustProxy decides nothing.
  const forwarded = { ...api, host: `127.0.0.1:${port}`, 'x-forwarded-host': `localhost:${port}` }
  t.equal(await raw(port, '/api/partner', forwarded), 404, 'X-Forwarded-Host untrusted: no partners route')
  t.equal(await raw(port, '/api/orders', forwarded), 200, 'X-Forwarded-Host untrusted: still staff')
  // The absolute form names another host than Host: refused, whichever it names.
  for (const target of [`http://localhost:${port}/api/partner`, `http://127.0.0.1:${port}/api/orders`]) {
    t.equal(await raw(port, target, { ...api, host: `127.0.0.1:${port}` }), 400, `absolute form ${target}`)
  }
  // A host no frontend serves: only the health endpoints.
  for (const path of ['/api/orders', '/auth/user', '/signin/user', '/api/partner']) {
    t.equal(await raw(port, path, { ...api, host: 'evil.example' }), 404, `evil.example ${path}`)
  }
  t.equal(await raw(port, '/healthz', { host: 'evil.example' }), 200, '/healthz on any host')
  // A partners call carrying staff's Origin: the anti-forgery check is partners' own.
  t.equal(
    await raw(port, '/auth/user', { ...api, host: `127.0.0.1:${port}`, origin: `http://localhost:${port}` }),
    403,
    "partners' origin refused at staff",
  )
})

t.test(
  "with server.trustProxy, the proxy's last X-Forwarded-Host picks the frontend, and the staff cookie is nothing there",
  async (t) => {
    const { staff, port } = await setup(t, true)
    const jar = new CookieJar()
    const start = await jarFetch(jar, `${staff}/auth/login`)
    t.equal(
      (await jarFetch(jar, await followLoginFlow(jar, start.location!, 'alice'))).status,
      302,
      'signed in',
    )
    const value = jar.get(staff, 'gatehouse-staff')!
    const api = {
      cookie: `gatehouse-staff=${value}; gatehouse-partners=${value}`,
      'x-csrf': '1',
      host: `127.0.0.1:${port}`,
    }
    const via = (forwarded: string) => ({ ...api, 'x-forwarded-host': forwarded })
    t.equal(await raw(port, '/api/orders', via(`127.0.0.1:${port}`)), 200, 'control: staff through the proxy')
    t.equal(
      await raw(port, '/api/partner', via(`localhost:${port}`)),
      401,
      'partners: the staff cookie is no session',
    )
    t.equal(await raw(port, '/signin/user', via(`localhost:${port}`)), 401, 'partners /user: no session')
    t.equal(await raw(port, '/api/orders', via(`localhost:${port}`)), 404, 'no staff route on partners')
    // A client's own X-Forwarded-Host comes first; the proxy appends the host it served.
    t.equal(
      await raw(port, '/api/orders', via(`localhost, 127.0.0.1:${port}`)),
      200,
      'the last entry decides',
    )
    t.equal(
      await raw(port, '/api/partner', via(`localhost, 127.0.0.1:${port}`)),
      404,
      'the first decides nothing',
    )
    t.equal(await raw(port, '/api/orders', via('evil.example')), 404, 'a host no frontend serves')
  },
)

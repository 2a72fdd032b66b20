import type { AddressInfo } from 'node:net'
import t from 'tap'
import { startDevIdp } from '../../dev/idp.js'
import { buildGateway } from '../../src/server/gateway.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, CLIENT_SECRET, testConfig } from '../helpers/gateway.js'
import { jarFetch } from '../helpers/login.js'

t.test(
  'an IdP that is down at startup: not ready, says which URL failed and why, keeps retrying, recovers',
  async (t) => {
    const idp = await startDevIdp({
      clients: [
        {
          clientId: CLIENT_ID,
          clientSecret: CLIENT_SECRET,
          redirectUris: ['http://127.0.0.1/auth/callback'],
        },
      ],
    })
    t.teardown(() => idp.close())
    idp.setFault('503')
    const lines: string[] = []
    // Only the gateway's own endpoints are called: its port need not be known before it listens.
    const app = await buildGateway(
      testConfig({
        port: 0,
        publicUrl: 'http://127.0.0.1',
        issuer: idp.issuer,
        routes: [],
        logLevel: 'info',
      }),
      {
        logStream: { write: (line: string) => void lines.push(line) },
      },
    )
    t.teardown(() => app.close())
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as AddressInfo
    const base = `http://127.0.0.1:${port}`

    const notReady = await jarFetch(new CookieJar(), `${base}/readyz`)
    t.equal(notReady.status, 503, 'not ready before discovery')
    t.equal(notReady.headers.get('retry-after'), '5', "the IdP's Retry-After from the catalogue")
    t.match(notReady.json(), { checks: { idp: 'not discovered' } })
    t.equal((await jarFetch(new CookieJar(), `${base}/healthz`)).status, 200, 'but alive')
    const login = await jarFetch(new CookieJar(), `${base}/auth/login`)
    t.equal(login.status, 503, 'login answers 503 while the IdP is unknown')
    t.ok(Number(login.headers.get('retry-after')) > 0)

    const failed = lines.find((l) => l.includes('discovery failed'))
    t.ok(failed, 'the failure is logged')
    t.match(failed, `${idp.issuer}/.well-known/openid-configuration`, 'with the URL that failed')
    t.match(failed, /"reason":"[^"]+"/, 'and why')

    idp.setFault('ok')
    await app.gatehouse.whenDiscovered()
    t.equal((await jarFetch(new CookieJar(), `${base}/readyz`)).status, 200, 'ready once discovery succeeds')
    t.equal((await jarFetch(new CookieJar(), `${base}/auth/login`)).status, 302)
  },
)

/**
 * RFC 8414 §2 makes each `…_supported` of a discovery document a JSON
 * array of strings; oauth4webapi checks none. One sent as a number or a
 * string is read as not listed, as `check --online` reads it, and the
 * operator is told which (test/oidc/fapi2.test.ts: the profile's checks
 * once threw on one, and `/readyz` answered 500).
 */
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { startDevIdp } from '../../dev/idp.js'
import { buildGateway } from '../../src/server/gateway.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, CLIENT_SECRET, testConfig } from '../helpers/gateway.js'
import { jarFetch } from '../helpers/login.js'

t.test(
  'a list sent as no list is read as not listed, named in a warning, and the gateway is ready',
  async (t) => {
    const idp = await startDevIdp({
      clients: [
        {
          clientId: CLIENT_ID,
          clientSecret: CLIENT_SECRET,
          redirectUris: ['http://127.0.0.1/auth/callback'],
        },
      ],
      quirks: {
        discoveryDocument: (doc) => ({
          ...doc,
          code_challenge_methods_supported: 5,
          prompt_values_supported: 'login',
        }),
      },
    })
    t.teardown(() => idp.close())
    const lines: Record<string, unknown>[] = []
    const app = await buildGateway(
      testConfig({
        port: 0,
        publicUrl: 'http://127.0.0.1',
        issuer: idp.issuer,
        routes: [],
        logLevel: 'info',
      }),
      { logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
    )
    t.teardown(() => app.close())
    await app.listen({ host: '127.0.0.1', port: 0 })
    await app.gatehouse.whenDiscovered()
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

    const metadata = app.gatehouse.oidc.metadata!
    t.notOk('code_challenge_methods_supported' in metadata, 'the number is not listed')
    t.notOk('prompt_values_supported' in metadata, 'nor is the string')
    t.same(
      lines
        .filter(
          (line) => line.msg === 'the identity provider advertises a discovery member of the wrong shape',
        )
        .map((l) => l.reason),
      [
        'the identity provider advertises prompt_values_supported as a string, not a list of strings (RFC 8414 §2); read as not listed',
        'the identity provider advertises code_challenge_methods_supported as a number, not a list of strings (RFC 8414 §2); read as not listed',
      ],
      'a warning names each',
    )
    const ready = await jarFetch(new CookieJar(), `${base}/readyz`)
    t.equal(ready.status, 200, 'ready: nothing this gateway needs is missing')
    const login = await jarFetch(new CookieJar(), `${base}/auth/login?prompt=login`)
    t.equal(login.status, 302, 'and a sign-in goes to the IdP')
  },
)

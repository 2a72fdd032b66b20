import t from 'tap'
import { startDevIdp } from '../../dev/idp.js'
import { startEchoUpstream } from '../../dev/upstream.js'
import { parseConfig } from '../../src/config/load.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, CLIENT_SECRET, startGateway, testConfigRaw } from '../helpers/gateway.js'
import { apiCall, followLoginFlow, jarFetch } from '../helpers/login.js'
import { onFreePorts } from '../helpers/ports.js'

/**
 * Two real IdPs, two frontends: staff signs in only at corp, partners only
 * at partner (its first, so its default). A frontend's sign-in never goes
 * to a provider it does not list.
 */
t.test(
  'each frontend signs in only with its own identity providers, the first of them by default',
  async (t) => {
    const upstream = await startEchoUpstream()
    t.teardown(() => upstream.close())
    const set = await onFreePorts(1, async ([port]) => {
      const staff = `http://127.0.0.1:${port}`
      const partners = `http://localhost:${port}`
      // Each provider's own address (RFC 9700 §4.4.2), at each frontend.
      const client = (name: string) => ({
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        redirectUris: [`${staff}/auth/callback/${name}`, `${partners}/auth/callback/${name}`],
        postLogoutRedirectUris: [`${staff}/`, `${partners}/`],
      })
      const corp = await startDevIdp({ accessTokenTtl: 60, clients: [client('corp')] })
      const partner = await startDevIdp({ accessTokenTtl: 60, clients: [client('partner')] })
      const route = (path: string) => ({ path, upstream: upstream.url, timeout: '5s' })
      const raw = {
        ...testConfigRaw({
          port: port!,
          issuer: corp.issuer,
          routes: [],
          identityProviders: [
            { name: 'corp', issuer: corp.issuer },
            { name: 'partner', issuer: partner.issuer },
          ],
        }),
        frontends: [
          {
            name: 'staff',
            host: '127.0.0.1',
            publicUrl: staff,
            identityProviders: ['corp'],
            routes: [route('/api')],
          },
          {
            name: 'partners',
            host: 'localhost',
            publicUrl: partners,
            identityProviders: ['partner'],
            routes: [route('/api')],
          },
        ],
      }
      try {
        const gateway = await startGateway(parseConfig(JSON.stringify(raw), 'frontends idp test config'))
        return { corp, partner, gateway, staff, partners }
      } catch (err) {
        await corp.close()
        await partner.close()
        throw err
      }
    })
    t.teardown(async () => {
      await set.gateway.close()
      await set.corp.close()
      await set.partner.close()
    })

    for (const [base, idp] of [
      [set.staff, 'partner'],
      [set.partners, 'corp'],
    ] as const) {
      const refused = await jarFetch(new CookieJar(), `${base}/auth/login?idp=${idp}`)
      t.equal(refused.status, 400, `${base}: ?idp=${idp} is not this frontend's`)
      t.equal(refused.location, undefined, 'and the browser goes to no IdP')
    }

    for (const [base, issuer, idp] of [
      [set.staff, set.corp.issuer, 'corp'],
      [set.partners, set.partner.issuer, 'partner'],
    ] as const) {
      const jar = new CookieJar()
      const start = await jarFetch(jar, `${base}/auth/login`)
      t.ok(
        start.location?.startsWith(issuer),
        `${base}: the default provider is the frontend's first (${idp})`,
      )
      const callback = await jarFetch(jar, await followLoginFlow(jar, start.location!, 'alice'))
      t.equal(callback.status, 302)
      const user = await apiCall(jar, `${base}/auth/user`)
      t.equal(user.json().idp, idp, '/auth/user names it')
      t.equal((await apiCall(jar, `${base}/api`)).status, 200)
    }
    t.equal(set.corp.stats.authorizationCodeGrants, 1, 'one code redeemed at corp')
    t.equal(set.partner.stats.authorizationCodeGrants, 1, 'one at partner')
  },
)

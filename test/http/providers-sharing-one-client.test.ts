import { exportJWK, generateKeyPair } from 'jose'
import t, { type Test } from 'tap'
import { type DevIdp, startDevIdp } from '../../dev/idp.js'
import { startEchoUpstream } from '../../dev/upstream.js'
import { parseConfig } from '../../src/config/load.js'
import { buildGateway } from '../../src/server/gateway.js'
import { createRedisStores } from '../../src/server/redis-stores.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, CLIENT_SECRET, listenOn, testConfigRaw } from '../helpers/gateway.js'
import { apiCall, followLoginFlow, jarFetch } from '../helpers/login.js'
import { signLogoutToken } from '../helpers/logout.js'
import { onFreePorts } from '../helpers/ports.js'
import { startRedis } from '../helpers/redis.js'

/**
 * Two `identityProviders` entries with one issuer and one client id, as
 * when two frontends send different `acr_values` to the same client: the
 * IdP knows one client, with one back-channel logout URI, and its logout
 * is for the sessions of both entries. A third entry of the same issuer
 * with another client id is another client, whose sessions stay.
 */
const OTHER_CLIENT = 'other-client'

const redis = await startRedis()
t.teardown(() => redis.stop())

interface Setup {
  readonly idp: DevIdp
  /** The instances, one origin behind a load balancer: the IdP talks to the first. */
  readonly urls: readonly string[]
  /** A logout token as the IdP signs it, for our client id (or `audience`). */
  logoutToken(claims: Record<string, unknown>, audience?: string | readonly string[]): Promise<string>
}

async function setup(t: Test, { frontends }: { frontends: boolean }): Promise<Setup> {
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const signingKey = { ...(await exportJWK(privateKey)), kid: 'idp-key', alg: 'RS256', use: 'sig' }
  const keyPrefix = `${redis.prefix}${Math.random().toString(36).slice(2, 8)}:`
  const started = await onFreePorts(2, async (ports) => {
    const publicUrl = `http://127.0.0.1:${ports[0]}`
    const adminBase = frontends ? `${publicUrl}/admin` : publicUrl
    const idp = await startDevIdp({
      accessTokenTtl: 60,
      signingKey,
      clients: [
        {
          clientId: CLIENT_ID,
          clientSecret: CLIENT_SECRET,
          redirectUris: [`${publicUrl}/auth/callback/corp`, `${adminBase}/auth/callback/corpadmin`],
          postLogoutRedirectUris: [`${publicUrl}/`, `${adminBase}/`],
          // One client, one back-channel URI: the first entry's frontend's.
          backchannelLogoutUri: `${publicUrl}/auth/backchannel-logout`,
        },
        {
          clientId: OTHER_CLIENT,
          clientSecret: CLIENT_SECRET,
          redirectUris: [`${publicUrl}/auth/callback/other`],
          postLogoutRedirectUris: [`${publicUrl}/`],
        },
      ],
    })
    const route = (path: string) => ({ path, upstream: upstream.url })
    const raw: Record<string, unknown> = testConfigRaw({
      port: 0,
      publicUrl,
      issuer: idp.issuer,
      routes: frontends ? [] : [route('/api')],
      store: redis.url,
      keyPrefix,
      identityProviders: [
        { name: 'corp', issuer: idp.issuer },
        {
          name: 'corpadmin',
          issuer: idp.issuer,
          scopes: ['openid', 'profile', 'offline_access', 'orders.read'],
        },
        { name: 'other', issuer: idp.issuer, clientId: OTHER_CLIENT },
      ],
    })
    if (frontends) {
      raw.frontends = [
        {
          name: 'staff',
          host: '127.0.0.1',
          publicUrl,
          identityProviders: ['corp', 'other'],
          routes: [route('/api')],
        },
        {
          name: 'admin',
          host: '127.0.0.1',
          pathPrefix: '/admin',
          publicUrl,
          identityProviders: ['corpadmin'],
          routes: [route('/admin/api')],
        },
      ]
      delete raw.routes
    }
    const apps: Awaited<ReturnType<typeof buildGateway>>[] = []
    try {
      for (const port of ports) {
        const config = parseConfig(
          JSON.stringify({ ...raw, server: { ...(raw.server as object), port } }),
          'shared client test config',
        )
        const app = await buildGateway(config, { stores: await createRedisStores(config, Date.now) })
        apps.push(app)
        await listenOn(app, port)
        await app.gatehouse.whenDiscovered()
      }
    } catch (err) {
      for (const app of apps) await app.close()
      await idp.close()
      throw err
    }
    return { idp, apps, ports }
  })
  t.teardown(async () => {
    for (const app of started.apps) await app.close()
    await started.idp.close()
  })
  return {
    idp: started.idp,
    urls: started.ports.map((port) => `http://127.0.0.1:${port}`),
    logoutToken: (claims, audience = CLIENT_ID) =>
      signLogoutToken({ issuer: started.idp.issuer, audience, key: privateKey, kid: 'idp-key' }, claims),
  }
}

/** A browser signed in at `base` (a frontend's origin and prefix) with provider `idp`. */
interface Browser {
  /** The status of a call to the frontend's API route through each instance. */
  api(): Promise<number[]>
  readonly jar: CookieJar
  readonly base: string
}

async function signIn(set: Setup, idp: string, prefix = ''): Promise<Browser> {
  const jar = new CookieJar()
  const first = set.urls[0]!
  const start = await jarFetch(jar, `${first}${prefix}/auth/login?idp=${idp}`)
  if (start.status !== 302 || !start.location) throw new Error(`/login answered ${start.status}`)
  const callback = await jarFetch(jar, await followLoginFlow(jar, start.location, 'alice'))
  if (callback.status !== 302) throw new Error(`callback answered ${callback.status}: ${callback.text}`)
  // One origin behind a load balancer: the cookie goes to every instance.
  for (const url of set.urls.slice(1)) {
    for (const name of (jar.header(first) ?? '').split('; ')) {
      const eq = name.indexOf('=')
      if (eq > 0) jar.set(url, name.slice(0, eq), name.slice(eq + 1))
    }
  }
  return {
    jar,
    base: `${first}${prefix}`,
    api: () => Promise.all(set.urls.map(async (url) => (await apiCall(jar, `${url}${prefix}/api`)).status)),
  }
}

function post(url: string, token: string) {
  return jarFetch(new CookieJar(), url, {
    method: 'POST',
    body: new URLSearchParams({ logout_token: token }),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  })
}

for (const frontends of [false, true]) {
  const admin = frontends ? '/admin' : ''
  const where = frontends ? 'each entry in a frontend of its own' : 'one frontend'
  t.test(
    `the IdP's logout for the client ends the sessions of every entry of that issuer and client id, on every instance (${where})`,
    async (t) => {
      const set = await setup(t, { frontends })
      const corp = await signIn(set, 'corp')
      const corpAdmin = await signIn(set, 'corpadmin', admin)
      const other = await signIn(set, 'other')
      for (const browser of [corp, corpAdmin, other]) t.same(await browser.api(), [200, 200])

      const ended = await set.idp.endSession('alice')
      t.equal(ended.failed, 0, `the IdP delivered its logout tokens (${ended.delivered})`)
      t.same(await corp.api(), [401, 401], 'the entry whose name verified the token: its session ended')
      t.same(await corpAdmin.api(), [401, 401], 'the other entry of the same client: its session ended too')
      t.same(
        await other.api(),
        [200, 200],
        'another client id of the same issuer is another client: it stays',
      )

      // At the other entry's own path, by sub: every entry's session of the user.
      const again = [await signIn(set, 'corp'), await signIn(set, 'corpadmin', admin)]
      const token = await set.logoutToken({ sub: 'alice' })
      const bySub = await post(`${set.urls[1]}${admin}/auth/backchannel-logout/corpadmin`, token)
      t.equal(bySub.status, 200)
      t.equal(bySub.json().ended, 2, 'both sessions of the client, counted once each')
      const replayed = await post(`${set.urls[0]}/auth/backchannel-logout/corp`, token)
      t.equal(
        replayed.status,
        400,
        "the same token at the other entry's path is a replay: it is one client's",
      )
      t.match(replayed.json().message, /already used/)
      for (const browser of again) t.same(await browser.api(), [401, 401])
      t.same(await other.api(), [200, 200])
    },
  )

  t.test(
    `log out everywhere ends the user's sessions of every entry of the issuer and client id (${where})`,
    async (t) => {
      const set = await setup(t, { frontends })
      const corp = await signIn(set, 'corp')
      const corpAdmin = await signIn(set, 'corpadmin', admin)
      const other = await signIn(set, 'other')
      const out = await apiCall(corpAdmin.jar, `${set.urls[1]}${admin}/auth/logout-everywhere`, {
        method: 'POST',
      })
      t.equal(out.status, 200)
      t.equal(out.json().ended, 2)
      t.same(await corpAdmin.api(), [401, 401])
      t.same(await corp.api(), [401, 401], "the same user's session of the other entry of the client")
      t.same(await other.api(), [200, 200], "another client's session of the same sub stays")
    },
  )
}

/**
 * One logout token whose `aud` lists two clients of the issuer, both
 * configured (§2.4 takes `aud` as an ID token's: one or several): it was
 * verified by the first provider that took it, and only that client's
 * sessions ended; the other client's ran on, though the IdP had signed its
 * user out of it too. Each configured client the token names is one it is
 * for, and each one's sessions end.
 */
t.test('a logout token for two configured clients of the issuer ends the sessions of both', async (t) => {
  const set = await setup(t, { frontends: false })
  const corp = await signIn(set, 'corp')
  const corpAdmin = await signIn(set, 'corpadmin')
  const other = await signIn(set, 'other')
  for (const browser of [corp, corpAdmin, other]) t.same(await browser.api(), [200, 200])

  const token = await set.logoutToken({ sub: 'alice' }, [OTHER_CLIENT, CLIENT_ID])
  const ended = await post(`${set.urls[1]}/auth/backchannel-logout`, token)
  t.equal(ended.status, 200)
  t.equal(ended.json().ended, 3, 'every session of both clients, counted once each')
  for (const browser of [corp, corpAdmin, other]) t.same(await browser.api(), [401, 401])
  const replayed = await post(`${set.urls[0]}/auth/backchannel-logout`, token)
  t.equal(replayed.status, 400, 'a copy is a replay for both clients')
  t.match(replayed.json().message, /already used/)

  // A provider's own path names its client: the token ends that client's sessions only.
  const again = [await signIn(set, 'corp'), await signIn(set, 'other')]
  const own = await post(
    `${set.urls[0]}/auth/backchannel-logout/other`,
    await set.logoutToken({ sub: 'alice' }, [OTHER_CLIENT, CLIENT_ID]),
  )
  t.equal(own.status, 200)
  t.equal(own.json().ended, 1)
  t.same(await again[0]!.api(), [200, 200], "the other client's session stays")
  t.same(await again[1]!.api(), [401, 401])
})

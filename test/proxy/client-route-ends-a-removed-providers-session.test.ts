import t from 'tap'
import type { WebSocket } from 'ws'
import type { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, route, TestClock, type TestProvider } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { configText, startReloadable } from '../helpers/reloadable.js'
import { startTwoFrontends } from '../helpers/two-frontends.js'
import { closed, openSocket, until, wsUpstream } from '../helpers/websocket.js'

/**
 * A `token: client` route sends the gateway's own token, on the strength of
 * the request's session. A session of a provider a reload removed, pointed
 * elsewhere or took off the frontend's list is a removed provider's
 * session (docs/frontends.md): its token serves until it is due, and the
 * session then ends. The client routes only checked that a session was
 * there, so such a session went on getting the gateway's token for hours,
 * over HTTP and on an open socket, while every user route said it was over.
 */

const RECHECK = 50 // ms

t.test(
  "a provider a reload takes off a frontend's list: its sessions end on the client routes too",
  async (t) => {
    const clock = new TestClock()
    const sockets = await wsUpstream(t)
    const staffWith = (identityProviders: ('corp' | 'partner')[]) => (upstream: string) => ({
      staff: {
        identityProviders,
        routes: [
          route('/reports', upstream, { token: 'client' }),
          route('/live', sockets.url, { token: 'client', websocket: true }),
        ],
      },
      partners: { identityProviders: ['partner' as const], routes: [] },
    })
    const s = await startTwoFrontends(t, staffWith(['corp', 'partner']), {
      now: clock.now,
      websocketRecheck: RECHECK,
    })
    const atPartner = async () => (await login(s.staff, { params: { idp: 'partner' } })).jar
    const calling = await atPartner()
    const listening = await atPartner()
    const corp = (await login(s.staff)).jar
    const reports = (jar: CookieJar) => apiCall(jar, `${s.staff}/reports/x`)
    const socket = async (jar: CookieJar): Promise<WebSocket> => {
      const headers = { origin: s.staff, cookie: jar.header(`${s.staff}/`) ?? '' }
      const opened = await openSocket(`${s.staff.replace(/^http/, 'ws')}/live/feed`, headers)
      t.teardown(() => opened.terminate())
      return opened
    }
    t.equal((await reports(calling)).status, 200)

    t.match(await s.reload(staffWith(['corp'])), { result: 'applied' })
    s.partner.resetStats()
    s.corp.resetStats()
    t.equal((await reports(calling)).status, 200, 'its token serves while it lasts, as on a user route')
    // The watch's reads of the sessions, which do not slide their expiry.
    const store = s.running.app.gatehouse.stores.sessions
    const read = store.get.bind(store)
    let checks = 0
    store.get = async (ref, now, options) => {
      if (options?.touch === false) checks++
      return read(ref, now, options)
    }
    // Opened on the new config: a socket keeps the config it was opened with (docs/deployment.md).
    const live = await socket(listening)
    const corpLive = await socket(corp)
    // A few of the watch's checks of both sockets, with the session's token not yet due.
    t.ok(await until(() => checks >= 6), `the watch checked the sessions (${checks} reads)`)
    t.equal(live.readyState, live.OPEN, 'and its socket stays open')

    const end = closed(live)
    // Every session's token is due now: the gateway's clock is past its life.
    clock.advance(60_000)
    t.same(await end, { code: 4401, reason: 'session ended' }, 'then the socket closes, its session over')
    const ended = await reports(calling)
    t.equal(ended.status, 401, 'and the client route ends the session')
    t.match(ended.json(), { error: 'session_expired', message: /no longer one this frontend signs in with/ })
    t.equal((await apiCall(calling, `${s.staff}/auth/user`)).status, 401, 'which is gone')
    t.equal((await reports(calling)).status, 401, 'and gets no token afterwards')
    t.equal(s.partner.stats.refreshGrants, 0, 'no refresh token went to the provider')

    t.equal((await reports(corp)).status, 200, "a listed provider's session with a due token is served")
    t.equal(corpLive.readyState, corpLive.OPEN, 'and its socket stays open')
    t.equal(s.corp.stats.refreshGrants, 0, 'a client route does not refresh its token')
  },
)

for (const change of ['removed', 'given another client id'] as const) {
  t.test(`a provider ${change} by a reload: its sessions end on a client route when due`, async (t) => {
    const clock = new TestClock()
    const stack = await startReloadable(t, (upstream) => [route('/reports', upstream, { token: 'client' })], {
      now: clock.now,
      input: (issuer) => ({
        identityProviders: [
          { name: 'a', issuer },
          { name: 'b', issuer },
        ],
      }),
    })
    const b = (await login(stack.url, { params: { idp: 'b' } })).jar
    const a = (await login(stack.url, { params: { idp: 'a' } })).jar
    const reports = (jar: CookieJar) => apiCall(jar, `${stack.url}/reports/x`)
    t.equal((await reports(b)).status, 200)

    const issuer = stack.idp.issuer
    const providers: TestProvider[] =
      change === 'removed'
        ? [{ name: 'a', issuer }]
        : [
            { name: 'a', issuer },
            { name: 'b', issuer, clientId: 'another-client' },
          ]
    stack.configMap.write(configText({ ...stack.input, identityProviders: providers }))
    t.ok(
      await until(() => {
        const now = stack.running.config.identityProviders
        return (
          now.length === providers.length &&
          now.at(-1)!.clientId === (providers.at(-1)!.clientId ?? CLIENT_ID)
        )
      }),
      'the reload applies',
    )
    stack.idp.resetStats()
    t.equal((await reports(b)).status, 200, 'its token serves while it lasts')

    clock.advance(60_000)
    const ended = await reports(b)
    t.equal(ended.status, 401, 'then the client route ends the session')
    t.match(ended.json(), { error: 'session_expired' })
    t.equal((await apiCall(b, `${stack.url}/auth/user`)).status, 401, 'which is gone')
    t.equal((await reports(a)).status, 200, "provider a's session is served as before")
    t.equal(stack.idp.stats.refreshGrants, 0, 'and no refresh token went anywhere')
  })
}

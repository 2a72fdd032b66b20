import t from 'tap'
import type { WebSocket } from 'ws'
import { LEDGER_EXCHANGE, ORDERS, STACK_EXCHANGE } from '../helpers/audience-stack.js'
import type { CookieJar } from '../helpers/cookie-jar.js'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { configText, startReloadable } from '../helpers/reloadable.js'
import { closed, openSocket, until, wsUpstream } from '../helpers/websocket.js'

/**
 * A session of a provider a reload removed (or pointed elsewhere, or took
 * off its frontend's list) lasts as long as its login token, which
 * `/auth/user` gives as its `sessionExpiresAt` (docs/identity-providers.md).
 * A route with a token of its own, exchanged (`token: exchange`) or minted
 * for a `resource`, served that token while it lived instead: one exchanged
 * or minted shortly before the reload went on reaching its upstream, over
 * HTTP and on an open socket, up to one token lifetime after the session
 * had said it was over, though the provider was no longer trusted.
 */

const RECHECK = 50 // ms
const TTL_S = 60

t.test(
  "a removed provider's session ends with its login token on routes with tokens of their own",
  async (t) => {
    const clock = new TestClock()
    const sockets = await wsUpstream(t)
    const scopes = ['openid', 'profile', 'offline_access', 'orders.read']
    const stack = await startReloadable(
      t,
      (upstream) => [
        route('/api', upstream),
        route('/orders', upstream, { resource: ORDERS }),
        route('/ledger', upstream, { token: 'exchange', exchange: LEDGER_EXCHANGE }),
        route('/live', sockets.url, { token: 'exchange', exchange: LEDGER_EXCHANGE, websocket: true }),
      ],
      {
        now: clock.now,
        websocketRecheck: RECHECK,
        accessTokenTtl: TTL_S,
        resourceIndicators: { resources: { [ORDERS]: { scopes: ['orders.read'] } } },
        idp: { tokenExchange: STACK_EXCHANGE },
        input: (issuer) => ({
          identityProviders: [
            { name: 'a', issuer, scopes },
            { name: 'b', issuer, scopes },
          ],
        }),
      },
    )
    const atB = async () => (await login(stack.url, { params: { idp: 'b' } })).jar
    const exchanging = await atB()
    const minting = await atB()
    const listening = await atB()
    const ledger = (jar: CookieJar) => apiCall(jar, `${stack.url}/ledger/x`)
    const orders = (jar: CookieJar) => apiCall(jar, `${stack.url}/orders/x`)

    // Late in the login token's life, each route gets a token of its own,
    // which lives past the login token by most of a lifetime.
    clock.advance(40_000)
    t.equal((await ledger(exchanging)).status, 200, 'exchanged')
    t.equal((await orders(minting)).status, 200, 'minted for its resource')
    t.equal((await ledger(listening)).status, 200, 'exchanged for the socket to come')
    const socket = async (jar: CookieJar): Promise<WebSocket> => {
      const headers = { origin: stack.url, cookie: jar.header(`${stack.url}/`) ?? '' }
      const opened = await openSocket(`${stack.url.replace(/^http/, 'ws')}/live/feed`, headers)
      t.teardown(() => opened.terminate())
      return opened
    }

    const issuer = stack.idp.issuer
    stack.configMap.write(configText({ ...stack.input, identityProviders: [{ name: 'a', issuer, scopes }] }))
    t.ok(await until(() => stack.running.config.identityProviders.length === 1), 'the reload applies')
    stack.idp.resetStats()
    t.equal((await ledger(exchanging)).status, 200, 'its exchanged token serves while the session lasts')
    t.equal((await orders(minting)).status, 200, 'and so does its resource token')
    // Opened on the new config, with the token exchanged before the reload.
    const live = await socket(listening)
    const user = (await apiCall(exchanging, `${stack.url}/auth/user`)).json() as Record<string, unknown>
    t.match(user, { refreshable: false }, '/auth/user says it cannot refresh')
    const endsAt = Date.parse(String(user.sessionExpiresAt))

    const end = closed(live)
    // Past the login token's expiry, which /auth/user announced; the route
    // tokens, exchanged and minted 40 s in, have 40 s left.
    clock.advance(TTL_S * 1000 - 40_000 + 1_000)
    t.ok(clock.now() > endsAt, 'past the end /auth/user gave')
    const refused = await ledger(exchanging)
    t.equal(refused.status, 401, 'the exchange route ends the session')
    t.match(refused.json(), { error: 'session_expired', message: /no longer configured/ })
    t.equal((await apiCall(exchanging, `${stack.url}/auth/user`)).status, 401, 'which is gone')
    const minted = await orders(minting)
    t.equal(minted.status, 401, 'so does the resource route')
    t.match(minted.json(), { error: 'session_expired' })
    t.same(await end, { code: 4401, reason: 'session ended' }, 'and the socket closes')
    t.equal(stack.idp.stats.refreshGrants, 0, 'no refresh token went to the provider')
    t.equal(stack.idp.stats.tokenExchanges, 0, 'nor any subject token')
  },
)

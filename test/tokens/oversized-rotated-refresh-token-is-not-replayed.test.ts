/**
 * A refresh answer whose new refresh token is over `tokens.maxSize` is
 * refused, and that token is not kept either: kept, it grew the session
 * record with every rotation. But the IdP has rotated, so the refresh
 * token the session held is spent, and redeeming it again is a replay
 * that a rotating IdP answers by revoking the grant (RFC 9700 §4.14.2).
 * So the session drops it, and lives on its access token while that
 * lasts, with no refresh token to redeem: never a replay.
 */
import t from 'tap'
import type { PaddedTokens } from '../../dev/idp.js'
import { sessionRefOf } from '../helpers/app.js'
import { apiCall, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'

const OVER = 20_000

t.test(
  'a rotated refresh token over tokens.maxSize is dropped, and the spent one never redeemed',
  async (t) => {
    const padding: { tokens?: PaddedTokens } = {}
    const stack = await startObservedStack(t, {
      accessTokenTtl: 60,
      idp: { quirks: { paddedTokens: (grant) => (grant === 'refresh_token' ? padding.tokens : undefined) } },
    })
    stack.clock.freeze()
    const base = stack.gateway.url
    const { jar } = await login(base)
    const app = stack.gateway.app
    const ref = sessionRefOf(app, jar.get(base, 'gatehouse')!)
    const stored = () => app.gatehouse.stores.sessions.get(ref, stack.clock.now())
    const before = JSON.stringify(await stored()).length
    stack.idp.resetStats()

    padding.tokens = { refresh_token: OVER }
    // Due (tokens.refreshBefore is 5 s in the tests), not yet expired.
    stack.clock.advance(56_000)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'the held token serves while it lasts')
    t.equal(stack.idp.stats.refreshGrants, 1)
    const session = (await stored())!
    // Its length only: a failed assertion must not print a token.
    t.equal(
      session.tokens.refreshToken?.length,
      undefined,
      'the spent refresh token is dropped, the new one not kept',
    )
    const after = JSON.stringify(session).length
    t.ok(after < before + 1024, `the session takes ${after} bytes, as before (${before})`)
    t.match(
      stack.lines.filter((l) => l.code === 'GATEHOUSE_TOKEN_TOO_LARGE'),
      [{ level: 40, operation: 'refresh', token: 'refresh_token', tokenBytes: OVER }],
    )

    delete padding.tokens
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'still the held token')
    stack.clock.advance(5_000)
    const ended = await apiCall(jar, `${base}/api/orders`)
    t.equal(ended.status, 401, 'once it expires the session ends: there is nothing left to redeem')
    t.equal(ended.json().error, 'session_expired')
    t.equal(stack.idp.stats.refreshGrants, 1, 'the IdP was asked no more')
    t.equal(stack.idp.stats.refreshReplays, 0, 'and never with the spent refresh token')
    t.equal(stack.idp.stats.revokedGrants, 0)
  },
)

import t, { type Test } from 'tap'
import { sessionRefOf } from '../helpers/app.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

const REFRESH_TTL = 600 // s, the IdP's refresh-token lifetime

async function setup(t: Test, refreshExpiresIn: boolean) {
  const clock = new TestClock()
  const lines: Record<string, unknown>[] = []
  const stack = await startStack(t, {
    accessTokenTtl: 60,
    idp: { refreshTokenTtl: REFRESH_TTL, refreshExpiresIn },
    config: { logLevel: 'info' },
    gateway: { now: clock.now, logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  const user = async () => {
    const res = await apiCall(jar, `${base}/auth/user`)
    return {
      status: res.status,
      endsAt:
        res.status === 200 ? Date.parse(res.json<{ sessionExpiresAt: string }>().sessionExpiresAt) : NaN,
    }
  }
  const record = async () => {
    const store = stack.gateway.app.gatehouse.stores.sessions
    const cookie = jar.get(base, 'gatehouse')
    return cookie === undefined ? undefined : store.get(sessionRefOf(stack.gateway.app, cookie), clock.now())
  }
  return { stack, clock, base, jar, user, record, lines }
}

/** Where the IdP says the refresh token expires, on the gateway's (moved) clock. */
async function idpExpiry(
  stack: Awaited<ReturnType<typeof setup>>['stack'],
  refreshToken: string,
  clock: TestClock,
) {
  const token = await stack.idp.provider.RefreshToken.find(refreshToken)
  return token!.exp! * 1000 + (clock.now() - Date.now())
}

t.test(
  'an IdP that says when the refresh token expires (refresh_expires_in) ends the session then',
  async (t) => {
    const { stack, clock, base, jar, user, record, lines } = await setup(t, true)
    const first = await record()
    t.ok(first?.tokens.refreshTokenExpiresAt, 'the expiry is kept with the tokens')
    t.ok(
      Math.abs(
        first!.tokens.refreshTokenExpiresAt! - (await idpExpiry(stack, first!.tokens.refreshToken!, clock)),
      ) < 2_000,
      "it is the refresh token's own expiry",
    )
    const seen = await user()
    t.equal(
      seen.endsAt,
      Math.floor(first!.tokens.refreshTokenExpiresAt! / 1000) * 1000 +
        (first!.tokens.refreshTokenExpiresAt! % 1000),
      '/auth/user reports it',
    )
    t.ok(seen.endsAt < first!.idleExpiresAt, 'earlier than the idle expiry (30 minutes)')

    // A refresh rotates the refresh token; the session follows the new one's expiry.
    clock.advance(61_000)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200)
    t.equal(stack.idp.stats.refreshGrants, 1)
    const after = await record()
    t.not(after!.tokens.refreshToken, first!.tokens.refreshToken)
    t.ok(
      Math.abs(
        after!.tokens.refreshTokenExpiresAt! - (await idpExpiry(stack, after!.tokens.refreshToken!, clock)),
      ) < 2_000,
      "the rotated token's expiry replaced the first's",
    )

    clock.advance(after!.tokens.refreshTokenExpiresAt! - clock.now() + 1_000)
    stack.idp.resetStats()
    const expired = await apiCall(jar, `${base}/api/orders`)
    t.equal(expired.status, 401, 'past it, the session is over')
    t.equal(expired.json().error, 'unauthenticated')
    t.equal(stack.idp.stats.tokenRequests, 0, 'without asking the IdP to redeem a dead refresh token')
    t.equal(await record(), undefined, 'the record is gone from the store')
    t.match(
      lines.filter((l) => l.code === 'GATEHOUSE_ERR_SESSION_EXPIRED'),
      [{ level: 30, msg: /^session ended: its refresh token expired/, session: String }],
      'one line says the session ended, and why',
    )
    t.equal((await user()).status, 401)
  },
)

t.test('an IdP that does not say: the session ends at its idle or absolute expiry, as before', async (t) => {
  const { user, record } = await setup(t, false)
  const session = await record()
  t.equal(session?.tokens.refreshTokenExpiresAt, undefined)
  t.equal((await user()).endsAt, session!.idleExpiresAt)
})

/**
 * "Log out everywhere" ended every session of the user but revoked only
 * the refresh token of the session that asked: oidc-provider gives each
 * browser's IdP session a grant of its own, so the grants of the other
 * browsers, the ones a user who fears a stolen device or token wants gone,
 * lived on at the IdP until their refresh tokens expired. Each ended
 * session's token is now revoked, where the store holds it in the clear
 * (the memory store; Redis seals it with a key only that session's own
 * cookie carries), a few at once and within the provider's `timeout`, and
 * one the IdP did not answer is owed, as the asking session's is.
 */
import t, { type Test } from 'tap'
import type { CookieJar } from '../helpers/cookie-jar.js'
import { apiCall, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { refreshingStack } from '../helpers/refreshing-stack.js'
import { until } from '../helpers/websocket.js'

const OWED = 'GATEHOUSE_REVOCATION_OWED'
const REVOKED = 'refresh token revoked once the identity provider answered again'

const redis = await startRedis()
t.teardown(() => redis.stop())

/** Alice signed in in `browsers` browsers, each an IdP session and a grant of its own, and their refresh tokens. */
async function aliceIn(t: Test, browsers: number, options: Parameters<typeof refreshingStack>[1] = {}) {
  const stack = await refreshingStack(t, options)
  const jars: CookieJar[] = []
  for (let i = 0; i < browsers; i++) {
    const { jar, callback } = await login(stack.base)
    t.equal(callback.status, 302, `alice signs in in browser ${i + 1}`)
    jars.push(jar)
  }
  const tokens = await Promise.all(jars.map((jar) => stack.refreshTokenOf(jar)))
  t.equal(new Set(tokens).size, browsers, 'each browser holds a refresh token of its own')
  const everywhere = () => apiCall(jars[0]!, `${stack.base}/auth/logout-everywhere`, { method: 'POST' })
  const active = async () =>
    (await Promise.all(tokens.map((token) => stack.stack.idp.introspect(token)))).map((i) => i.active)
  return { ...stack, jars, tokens, everywhere, active }
}

t.test('memory: log out everywhere revokes the grant of every browser’s session', async (t) => {
  const { stack, log, jars, tokens, everywhere, active } = await aliceIn(t, 3)
  const out = await everywhere()
  t.equal(out.status, 200)
  t.same(out.json(), { ended: 3 })
  for (const jar of jars) t.equal((await apiCall(jar, `${stack.gateway.url}/auth/user`)).status, 401)
  t.same(await active(), [false, false, false], 'every refresh token is dead at the IdP')
  t.equal(stack.idp.stats.revokedGrants, 3, 'each browser’s grant revoked')
  t.equal(stack.idp.stats.revocations, 3, 'once each')
  t.notOk(
    log.lines.some((line) => tokens.some((token) => JSON.stringify(line).includes(token))),
    'no token is logged',
  )
})

t.test('redis: log out everywhere revokes its own grant and says why not the others’', async (t) => {
  const { stack, log, jars, active, everywhere } = await aliceIn(t, 3, {
    config: { store: redis.url, keyPrefix: `${redis.prefix}lev:` },
  })
  const out = await everywhere()
  t.equal(out.status, 200)
  t.same(out.json(), { ended: 3 })
  for (const jar of jars) t.equal((await apiCall(jar, `${stack.gateway.url}/auth/user`)).status, 401)
  t.same(await active(), [false, true, true], 'the asking session’s refresh token is dead at the IdP')
  t.match(
    log.lines.find((line) =>
      /^log out everywhere: the refresh tokens of the other sessions it ended \(2\)/.test(line.msg),
    ),
    { level: 30, idp: 'default', sessions: 2, msg: /sealed with a key only its own cookie carries/ },
    'the log says why the others are not revoked',
  )
})

t.test(
  'memory: an IdP down during log out everywhere is owed every grant, revoked once it answers',
  async (t) => {
    const { stack, log, tokens, everywhere, active } = await aliceIn(t, 3)
    stack.idp.setDown('503')
    t.equal((await everywhere()).status, 200, 'every session ends all the same')
    const owed = () => log.lines.filter((line) => line.code === OWED).length
    t.ok(await until(() => owed() === 3), `every revocation is owed (${owed()})`)
    t.same(await active(), [true, true, true], 'the tokens still live at the IdP')

    stack.idp.setDown('ok')
    t.ok(await until(async () => (await active()).every((a) => !a)), 'every token is dead at the IdP')
    t.equal(stack.idp.stats.revokedGrants, 3)
    t.ok(log.lines.some((line) => line.msg === REVOKED))
    t.notOk(log.lines.some((line) => line.code === 'GATEHOUSE_REVOCATION_LOST'))
    t.notOk(
      log.lines.some((line) => tokens.some((token) => JSON.stringify(line).includes(token))),
      'no token is logged',
    )
  },
)

t.test('memory: the revocations go a few at once, and each token once', async (t) => {
  const { stack, everywhere } = await aliceIn(t, 7)
  let inFlight = 0
  let most = 0
  const seen: string[] = []
  stack.idp.answer('revocation', {
    status: 200,
    body: (params) => {
      seen.push(params.get('token') ?? '')
      most = Math.max(most, ++inFlight)
      return ''
    },
    // An IdP's round trip, so that the calls the gateway makes at once are in flight together.
    held: () =>
      new Promise((resolve) =>
        setTimeout(() => {
          inFlight--
          resolve()
        }, 50),
      ),
  })
  t.equal((await everywhere()).status, 200)
  t.equal(seen.length, 7, 'every session’s token revoked')
  t.equal(new Set(seen).size, 7, 'each once')
  t.ok(most > 1, `side by side (${most} at once)`)
  t.ok(most <= 4, `a bounded number at once (${most})`)
})

t.test(
  'memory: an IdP that holds its revocations open delays the answer no longer than its timeout',
  async (t) => {
    const timeout = 1_500
    const { stack, log, everywhere, active } = await aliceIn(t, 9, { config: { idpTimeout: timeout } })
    stack.idp.setDown('hang')
    const started = performance.now()
    t.equal((await everywhere()).status, 200, 'every session ends')
    const took = performance.now() - started
    // Four at a time, each call given only its own timeout, nine would take
    // three timeouts; the margin is for a loaded machine.
    t.ok(took < 2.5 * timeout, `answered within about one timeout (${Math.round(took)} ms)`)
    const owed = () => log.lines.filter((line) => line.code === OWED).length
    t.equal(owed(), 9, 'every revocation it did not answer is owed')
    stack.idp.setDown('ok')
    t.ok(await until(async () => (await active()).every((a) => !a)), 'and made once it answers')
  },
)

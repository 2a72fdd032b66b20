/**
 * Revocations owed since an IdP did not answer are held in the instance's
 * memory only. A shutdown dropped them (GATEHOUSE_REVOCATION_LOST, reason
 * `closed`), even when the IdP had come back during the backoff and the
 * next try was only seconds away: each restart (a rolling upgrade) left
 * those grants live at the IdP until their refresh tokens expired. A
 * shutdown now makes one last pass over what is owed, within the drain.
 */
import type { ServerResponse } from 'node:http'
import type { Test } from 'tap'
import t from 'tap'
import { sessionRefOf } from '../helpers/app.js'
import { route } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { LogLines, startReloadable } from '../helpers/reloadable.js'

const REVOKED = 'refresh token revoked once the identity provider answered again'
const OWED = 'GATEHOUSE_REVOCATION_OWED'
const LOST = 'GATEHOUSE_REVOCATION_LOST'

/**
 * A gateway as the CLI starts it, and a user's logout whose revocation the
 * IdP answered 503, as it does each try until told otherwise; `tried(n)`
 * resolves once the IdP has been asked `n` times.
 */
async function owedAtLogout(t: Test, idpTimeout?: number) {
  const logs = new LogLines()
  const stack = await startReloadable(t, (upstream) => [route('/api', upstream)], {
    accessTokenTtl: 600,
    watch: false,
    input: { logLevel: 'info', ...(idpTimeout === undefined ? {} : { idpTimeout }) },
    logStream: logs.stream,
  })
  const base = stack.url
  const { jar } = await login(base)
  const app = stack.running.app
  const ref = sessionRefOf(app, jar.get(base, 'gatehouse')!)
  const token = (await app.gatehouse.stores.sessions.get(ref, Date.now(), { touch: false }))!.tokens
    .refreshToken!
  const { logoutUrl } = (await apiCall(jar, `${base}/auth/user`)).json<{ logoutUrl: string }>()
  let tries = 0
  const waiting = new Map<number, () => void>()
  const tried = (n: number) =>
    new Promise<void>((resolve) => (tries >= n ? resolve() : waiting.set(n, resolve)))
  stack.idp.answer('revocation', {
    status: 503,
    headers: { 'retry-after': '1' },
    body: () => {
      tries++
      waiting.get(tries)?.()
      return 'unavailable'
    },
  })
  t.equal((await jarFetch(jar, `${base}${logoutUrl}`)).status, 200, 'the user is logged out all the same')
  await logs.seen('the revocation owed', (line) => line.code === OWED)
  return { stack, logs, token, tried }
}

t.test(
  'an IdP back before the next try has the owed revocation made as the gateway shuts down',
  async (t) => {
    const { stack, logs, token, tried } = await owedAtLogout(t)
    // The logout's own call, then the first try 1 s on (sent; its answer
    // may still be on its way): the next would wait 2 s.
    await tried(2)
    stack.idp.answer('revocation')
    t.equal((await stack.idp.introspect(token)).active, true, 'the token still lives at the IdP')

    await stack.running.close()
    t.equal((await stack.idp.introspect(token)).active, false, 'the token is dead at the IdP')
    t.equal(stack.idp.stats.revokedGrants, 1, 'and its grant revoked')
    t.ok(
      logs.lines.some((line) => line.msg === REVOKED),
      'the log says so',
    )
    t.notOk(
      logs.lines.some((line) => line.code === LOST),
      'nothing is lost',
    )
  },
)

t.test('the last pass ends with the drain, not at an IdP that holds the call open', async (t) => {
  // An IdP timeout longer than the drain: the drain must bound the call.
  const { stack, logs, token } = await owedAtLogout(t, 30_000)
  stack.idp.setDown('hang')
  // As a SIGTERM starts it (start.ts): 2 s, the last pass cut off at 1.5 s.
  stack.running.app.gatehouse.lasting.drain.start(2_000)
  const stopping = performance.now()
  await stack.running.close()
  const took = performance.now() - stopping
  // Held for the IdP's timeout, the close would take 30 s; half of that tells them apart on any machine.
  t.ok(took < 15_000, `closed within the drain (${Math.round(took)} ms), not at the IdP's timeout`)
  t.match(
    logs.lines.find((line) => line.code === LOST),
    { reason: 'closed', owed: 1 },
    'what the IdP did not answer in time is dropped, and said to be',
  )
  stack.idp.setDown('ok')
  t.equal((await stack.idp.introspect(token)).active, true, 'its token lives on at the IdP')
})

t.test("the revocation call under way when the drain ends is let go at the IdP's side", async (t) => {
  const { stack, logs } = await owedAtLogout(t, 30_000)
  let release = () => {}
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  t.teardown(() => release())
  const held: ServerResponse[] = []
  const letGo = new Set<ServerResponse>()
  let calling = () => {}
  const called = new Promise<void>((resolve) => {
    calling = resolve
  })
  stack.idp.answer('revocation', {
    status: 503,
    headers: { 'retry-after': '1' },
    body: 'unavailable',
    held: (res) => {
      held.push(res)
      res.once('close', () => {
        if (!res.writableFinished) letGo.add(res)
      })
      calling()
      return released
    },
  })
  // The owed revocation's next try (1 s on) is under way, held open.
  await called
  stack.running.app.gatehouse.lasting.drain.start(2_000)
  const stopping = performance.now()
  await stack.running.close()
  const took = performance.now() - stopping
  const letGoByThen = held.length > 0 && held.every((res) => letGo.has(res))
  t.ok(took < 4_000, `closed within the drain and a bound (${Math.round(took)} ms)`)
  t.ok(
    letGoByThen,
    "every revocation call held open was let go by then (its connection closed at the IdP's side)",
  )
  t.match(
    logs.lines.find((line) => line.code === LOST),
    { reason: 'closed', owed: 1 },
    'what the IdP did not answer in time is dropped, and said to be',
  )
})

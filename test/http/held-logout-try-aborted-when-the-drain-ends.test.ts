/**
 * The shutdown's last pass stops at the drain's end, but a held logout
 * token's try under way then was not told: its JWKS fetch ran on until the
 * IdP's `timeout`, past the point the gateway said it had closed, and the
 * provider's connection pool, closed after it, waited for it. The try's
 * fetch is now aborted when the drain ends, and what was not carried out is
 * said to be lost.
 */
import type { ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { login } from '../helpers/login.js'
import { startTwoIdpsPostingLogouts } from '../helpers/two-idps.js'

const LOST = 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST'

t.test("a held token's JWKS fetch that hangs is aborted when the drain ends", async (t) => {
  // An IdP timeout far past the drain: only the drain can end the fetch in time.
  const set = await startTwoIdpsPostingLogouts(t, { idpTimeout: 60_000 })
  const { log } = set
  const app = set.apps[0]!
  await login(set.base, { user: 'carol', params: { idp: 'corp' } })

  set.corp.idp.answer('jwks', { status: 503, body: 'unavailable', headers: { 'retry-after': '1' } })
  t.equal((await set.post(await set.corp.logoutToken({ sub: 'carol' }))).status, 503, "corp's token is held")

  // Then corp's JWKS holds every fetch open, and says when the gateway lets one go.
  let release = () => {}
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  t.teardown(() => release())
  const hanging: ServerResponse[] = []
  let fetching = () => {}
  const fetched = new Promise<void>((resolve) => {
    fetching = resolve
  })
  const letGo = new Set<ServerResponse>()
  set.corp.idp.answer('jwks', {
    status: 503,
    headers: { 'retry-after': '1' },
    body: 'unavailable',
    held: (res) => {
      hanging.push(res)
      res.once('close', () => {
        if (!res.writableFinished) letGo.add(res)
      })
      fetching()
      return released
    },
  })
  // The held token's next try (1 s on) is under way, its fetch held open.
  await fetched

  // As a SIGTERM shuts it down (start.ts): 2 s, the last pass cut off at 1.5 s.
  app.gatehouse.lasting.shutDown()
  app.gatehouse.lasting.drain.start(2_000)
  const stopping = performance.now()
  await app.close()
  const took = performance.now() - stopping
  // Looked at as the close returns: the IdP's own timeout would let them go too, 60 s on.
  const letGoByThen = hanging.length > 0 && hanging.every((res) => letGo.has(res))

  t.ok(took < 4_000, `closed within the drain and a bound (${Math.round(took)} ms), not at the IdP's timeout`)
  t.ok(
    letGoByThen,
    "every JWKS fetch held open was let go by the gateway by then (its connection closed at the IdP's side)",
  )
  t.match(
    log.lines.find((l) => l.code === LOST),
    { reason: 'closed', unverified: 1 },
    'the token not carried out is dropped, and said to be',
  )
})

/**
 * A logout token held while its issuer's keys could not be read was
 * dropped untried as the gateway shut down (GATEHOUSE_BACKCHANNEL_LOGOUT_LOST,
 * reason `closed`, `unverified`), even with the keys readable again during
 * its backoff: the IdP sends it once, and its user's sessions ran on
 * wherever they were kept. The shutdown's last pass, which tried the owed
 * revocations and logouts once more, now tries the held tokens too.
 */
import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { jarFetch, login } from '../helpers/login.js'
import { LogLines } from '../helpers/reloadable.js'
import { startTwoIdps } from '../helpers/two-idps.js'

const CARRIED_OUT = "back-channel logout carried out once the issuer's keys could be read"
const LOST = 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST'

t.test('a logout token held unverified is tried once more as the gateway shuts down', async (t) => {
  const log = new LogLines()
  const set = await startTwoIdps(t, {
    backchannel: 'shared',
    config: { logLevel: 'info' },
    gateway: { logStream: log.stream },
  })
  const base = set.urls[0]!
  const app = set.apps[0]!
  await login(base, { user: 'carol', params: { idp: 'corp' } })

  // Corp's JWKS answers every fetch 503; each fetch is counted as it comes.
  let corpFetches = 0
  const waiting = new Map<number, () => void>()
  const corpFetched = (n: number) =>
    new Promise<void>((resolve) => (corpFetches >= n ? resolve() : waiting.set(n, resolve)))
  set.corp.idp.answer('jwks', {
    status: 503,
    headers: { 'retry-after': '1' },
    body: () => {
      corpFetches++
      waiting.get(corpFetches)?.()
      return 'unavailable'
    },
  })
  const delivery = await jarFetch(new CookieJar(), `${base}/auth/backchannel-logout`, {
    method: 'POST',
    body: new URLSearchParams({ logout_token: await set.corp.logoutToken({ sub: 'carol' }) }),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  })
  t.equal(delivery.status, 503, "corp's token is held")
  // The delivery's own fetch, then tries 1 s and 2 s apart: the next waits 4 s.
  await corpFetched(3)
  set.corp.idp.answer('jwks')

  // As a SIGTERM shuts it down (start.ts).
  app.gatehouse.lasting.shutDown()
  app.gatehouse.lasting.drain.start(5_000)
  await app.close()

  t.ok(
    log.lines.some((l) => l.msg === CARRIED_OUT && l.idp === 'corp'),
    'the held logout was carried out as the gateway shut down',
  )
  t.notOk(
    log.lines.some((l) => l.code === LOST),
    'nothing is lost',
  )
})

/**
 * A logout token held while its issuer's keys could not be read was
 * dropped untried as the gateway shut down (GATEHOUSE_BACKCHANNEL_LOGOUT_LOST,
 * reason `closed`, `unverified`), even with the keys readable again during
 * its backoff: the IdP sends it once, and its user's sessions ran on
 * wherever they were kept. The shutdown's last pass, which tried the owed
 * revocations and logouts once more, now tries the held tokens too.
 */
import t from 'tap'
import { login } from '../helpers/login.js'
import { HELD_LOGOUT_CARRIED_OUT, jwksDownCounted } from '../helpers/logout.js'
import { startTwoIdpsPostingLogouts } from '../helpers/two-idps.js'

const LOST = 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST'

t.test('a logout token held unverified is tried once more as the gateway shuts down', async (t) => {
  const set = await startTwoIdpsPostingLogouts(t)
  const { base, log } = set
  const app = set.apps[0]!
  await login(base, { user: 'carol', params: { idp: 'corp' } })

  const corpJwks = jwksDownCounted(set.corp.idp)
  const delivery = await set.post(await set.corp.logoutToken({ sub: 'carol' }))
  t.equal(delivery.status, 503, "corp's token is held")
  // The delivery's own fetch, then tries 1 s and 2 s apart: the next waits 4 s.
  await corpJwks.fetched(3)
  set.corp.idp.answer('jwks')

  // As a SIGTERM shuts it down (start.ts).
  app.gatehouse.lasting.shutDown()
  app.gatehouse.lasting.drain.start(5_000)
  await app.close()

  t.ok(
    log.lines.some((l) => l.msg === HELD_LOGOUT_CARRIED_OUT && l.idp === 'corp'),
    'the held logout was carried out as the gateway shut down',
  )
  t.notOk(
    log.lines.some((l) => l.code === LOST),
    'nothing is lost',
  )
})

/**
 * Owed revocations are tried again after 1 s, doubling to 30 s while the
 * IdP stays away. The delay was one for every provider: partner's IdP down
 * for a few tries doubled it, and a revocation then owed to corp, whose IdP
 * had failed one call and answered again, waited for partner's next try,
 * 8 s here and up to 30 s, its grant live at corp meanwhile. Each IdP's
 * owed revocations now keep a backoff of their own, and corp's is made
 * after its own first second, before partner's next try.
 */
import t from 'tap'
import { followLogoutLink } from '../helpers/login.js'
import { LogLines } from '../helpers/reloadable.js'
import { signInHoldingRefreshToken, startTwoIdps } from '../helpers/two-idps.js'

const REVOKED = 'refresh token revoked once the identity provider answered again'

t.test("corp's owed revocation is made after its own first delay, not partner's", async (t) => {
  const log = new LogLines()
  const set = await startTwoIdps(t, { config: { logLevel: 'info' }, gateway: { logStream: log.stream } })
  const base = set.urls[0]!
  const app = set.apps[0]!
  const signIn = (user: string, idp: 'corp' | 'partner') => signInHoldingRefreshToken(set, user, idp)
  const alice = await signIn('alice', 'partner')
  const carol = await signIn('carol', 'corp')

  // Partner's IdP answers every revocation 503; each try is counted as it comes.
  let partnerTries = 0
  const waiting = new Map<number, () => void>()
  const partnerTried = (n: number) =>
    new Promise<void>((resolve) => (partnerTries >= n ? resolve() : waiting.set(n, resolve)))
  set.partner.idp.answer('revocation', {
    status: 503,
    headers: { 'retry-after': '1' },
    body: () => {
      partnerTries++
      waiting.get(partnerTries)?.()
      return 'unavailable'
    },
  })
  t.equal((await followLogoutLink(alice.jar, base)).status, 200, 'alice logs out at partner')
  await log.seen(
    "partner's revocation owed",
    (l) => l.code === 'GATEHOUSE_REVOCATION_OWED' && l.idp === 'partner',
  )
  // The logout's own call, then tries 1 s, 2 s and 4 s apart: partner's next waits 8 s.
  await partnerTried(4)

  // Corp's IdP fails this one call: an outage as brief as any, which owes it.
  set.corp.idp.answer('revocation', { status: 503, body: 'busy', headers: { 'retry-after': '1' } })
  t.equal((await followLogoutLink(carol.jar, base)).status, 200, 'carol logs out at corp')
  set.corp.idp.answer('revocation')
  await log.seen("corp's revocation owed", (l) => l.code === 'GATEHOUSE_REVOCATION_OWED' && l.idp === 'corp')
  const owedAt = performance.now()

  await log.seen("corp's revocation made", (l) => l.msg === REVOKED && l.idp === 'corp', 20_000)
  t.comment(`corp's revocation made ${Math.round(performance.now() - owedAt)} ms after it was owed`)
  t.equal(partnerTries, 4, "before partner's next try: corp's waited its own 1 s, not partner's 8 s")
  t.equal((await set.corp.idp.introspect(carol.token)).active, false, "carol's refresh token is dead at corp")

  // Partner answers again: its own backoff brings its revocation at its next try.
  set.partner.idp.answer('revocation')
  await log.seen("partner's revocation made", (l) => l.msg === REVOKED && l.idp === 'partner', 20_000)
  t.equal(
    (await set.partner.idp.introspect(alice.token)).active,
    false,
    "alice's refresh token is dead at partner",
  )
  t.equal(app.gatehouse.lasting.owedRevocations.size, 0, 'nothing is owed')
})

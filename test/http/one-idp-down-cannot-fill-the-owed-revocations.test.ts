/**
 * The revocations owed since an IdP did not answer are bounded over every
 * provider (10,000; 2 here). One IdP down through many logouts filled the
 * bound, and a revocation owed to another provider, whose IdP failed one
 * call and then answered again, was refused as `full`: its grant lived on
 * at that IdP until its refresh token expired. Now the issuer that holds
 * the most gives up its own oldest, and the other provider's revocation is
 * kept and made at its IdP.
 */
import t from 'tap'
import { followLogoutLink } from '../helpers/login.js'
import { LogLines } from '../helpers/reloadable.js'
import { signInHoldingRefreshToken, startTwoIdps } from '../helpers/two-idps.js'

const REVOKED = 'refresh token revoked once the identity provider answered again'
const OWED = 'GATEHOUSE_REVOCATION_OWED'
const LOST = 'GATEHOUSE_REVOCATION_LOST'

t.test("partner's IdP down fills the bound, and corp's owed revocation is still made", async (t) => {
  const log = new LogLines()
  const set = await startTwoIdps(t, {
    config: { logLevel: 'info' },
    gateway: { logStream: log.stream, owedMax: 2 },
  })
  const base = set.urls[0]!
  const app = set.apps[0]!
  const owed = app.gatehouse.lasting.owedRevocations
  const signIn = (user: string, idp: 'corp' | 'partner') => signInHoldingRefreshToken(set, user, idp)
  const owedLines = (idp: string) => log.lines.filter((l) => l.code === OWED && l.idp === idp).length

  const alice = await signIn('alice', 'partner')
  const bob = await signIn('bob', 'partner')
  const carol = await signIn('carol', 'corp')

  set.partner.idp.setDown('503')
  for (const { jar } of [alice, bob]) t.equal((await followLogoutLink(jar, base)).status, 200)
  t.equal(owedLines('partner'), 2, 'both partner revocations are owed, and fill the bound')
  t.equal(owed.size, 2)

  // Corp's IdP fails this one call: an outage as brief as any, which owes it.
  set.corp.idp.answer('revocation', { status: 503, body: 'busy', headers: { 'retry-after': '1' } })
  t.equal((await followLogoutLink(carol.jar, base)).status, 200, 'carol logs out at corp')
  set.corp.idp.answer('revocation')
  t.equal(owedLines('corp'), 1, "corp's revocation is owed")
  t.same(
    log.lines.filter((l) => l.code === LOST).map((l) => ({ idp: l.idp, reason: l.reason })),
    [{ idp: 'partner', reason: 'full' }],
    "the bound gives up one of partner's, the issuer that holds the most, not corp's",
  )
  t.equal(owed.size, 2, "corp's and one of partner's are owed")

  await log.seen("corp's revocation made", (l) => l.msg === REVOKED && l.idp === 'corp', 40_000)
  t.equal((await set.corp.idp.introspect(carol.token)).active, false, "carol's refresh token is dead at corp")
  t.equal(set.corp.idp.stats.revokedGrants, 1, 'and her grant revoked')
  t.equal(owed.size, 1, "partner's other is still owed while its IdP is down")
  t.equal((await set.partner.idp.introspect(bob.token)).active, true, 'partner never answered')
})

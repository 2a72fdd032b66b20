import t from 'tap'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { startTwoFrontends } from '../helpers/two-frontends.js'

/**
 * A reload (or a restart) that takes a provider off a frontend's list,
 * while other frontends keep it. The frontend's sessions of that provider
 * are then a removed provider's to the whole frontend: `/auth/user` says
 * they cannot refresh, their token serves until it is due, and the
 * session then ends; logout ends them here only. The sign-in routes judged
 * them by the frontend's providers and the proxy by all of them, so
 * `/auth/user` said `refreshable: false` while the proxy went on
 * refreshing them at the provider the frontend no longer signs in with.
 */
t.test(
  "a provider a reload takes off a frontend's list: that frontend's sessions of it end as a removed provider's",
  async (t) => {
    const clock = new TestClock()
    const both = (identityProviders: ('corp' | 'partner')[]) => (upstream: string) => ({
      staff: { identityProviders, routes: [route('/api', upstream)] },
      partners: { identityProviders: ['partner' as const], routes: [route('/api', upstream)] },
    })
    const s = await startTwoFrontends(t, both(['corp', 'partner']), { now: clock.now })
    const staffAtPartner = async () => (await login(s.staff, { params: { idp: 'partner' } })).jar
    const due = await staffAtPartner()
    const leaving = await staffAtPartner()
    const partners = (await login(s.partners)).jar
    const user = async (jar: typeof due, base = s.staff) => {
      const answer = await apiCall(jar, `${base}/auth/user`)
      return answer.status === 200 ? answer.json<{ idp: string; refreshable: boolean }>() : answer.status
    }
    t.match(await user(due), { idp: 'partner', refreshable: true })

    t.match(await s.reload(both(['corp'])), { result: 'applied' })
    s.partner.resetStats()
    t.match(
      await user(due),
      { idp: 'partner', refreshable: false },
      'no provider of the frontend refreshes it',
    )
    t.equal((await apiCall(due, `${s.staff}/api/x`)).status, 200, 'its token serves while it lasts')

    // Every token is due now: the gateway's clock is past their life.
    clock.advance(60_000)
    const ended = await apiCall(due, `${s.staff}/api/x`)
    t.equal(ended.status, 401, 'then the session ends')
    t.match(ended.json(), { error: 'session_expired', message: /no longer one this frontend signs in with/ })
    t.equal(await user(due), 401, 'and is gone')
    t.equal(s.partner.stats.refreshGrants, 0, 'its refresh token never went to the provider')

    const out = await jarFetch(leaving, `${s.staff}/auth/logout?sid=${await sid(leaving, s.staff)}`)
    t.equal(out.status, 302)
    t.equal(out.location, `${s.staff}/`, 'its logout ends it here, at the frontend home')
    t.equal(s.partner.stats.revocations, 0, 'and sends nothing to the provider')
    t.equal(await user(leaving), 401)

    t.equal(
      (await apiCall(partners, `${s.partners}/api/x`)).status,
      200,
      'a frontend that lists the provider',
    )
    t.equal(s.partner.stats.refreshGrants, 1, 'still refreshes its sessions at it')
    t.match(await user(partners, s.partners), { idp: 'partner', refreshable: true })
  },
)

/** The session's logout handle, as the SPA reads it from /auth/user. */
async function sid(jar: Parameters<typeof apiCall>[0], base: string): Promise<string> {
  const { logoutUrl } = (await apiCall(jar, `${base}/auth/user`)).json<{ logoutUrl: string }>()
  return new URL(logoutUrl, base).searchParams.get('sid')!
}

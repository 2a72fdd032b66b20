import t from 'tap'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { type ProviderName, startTwoFrontends } from '../helpers/two-frontends.js'
import { pollUntil } from '../helpers/within.js'

/**
 * Each list of providers a frontend signs in with has user tokens of its
 * own (a single-flight per list). They were kept, by the list, for as long
 * as the IdP parts were, so a process whose reloads kept changing the
 * frontends' lists held the tokens of every list any config had named. Now
 * a list's tokens go once no app uses it: the running config's lists, and
 * those of an app a reload retired while its requests finish, which
 * finish on the tokens they started with.
 */
t.test(
  "reloads that change the frontends' provider lists keep the user tokens of the lists in use only",
  async (t) => {
    const clock = new TestClock()
    const lists = (staff: ProviderName[]) => (upstream: string) => ({
      staff: { identityProviders: staff, routes: [route('/api', upstream)] },
      partners: { identityProviders: ['partner' as const], routes: [route('/api', upstream)] },
    })
    const s = await startTwoFrontends(t, lists(['corp']), { now: clock.now })
    const { lasting } = s.running.app.gatehouse
    // Until the retired app has closed, or a bound passed: what is held then is asserted.
    const settled = (lists: number) =>
      pollUntil(async () => lasting.frontendTokenLists <= lists, 3_000).catch(() => {})
    t.equal(lasting.frontendTokenLists, 2, "one list a frontend: staff's and partners'")

    // A refresh of the first app's held at the IdP while a reload retires it.
    const { jar } = await login(s.staff)
    let release!: () => void
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    let reachedIt!: () => void
    const reached = new Promise<void>((resolve) => {
      reachedIt = resolve
    })
    s.corp.holdTokenAnswers(() => {
      reachedIt()
      return held
    })
    clock.advance(120_000)
    const inFlight = apiCall(jar, `${s.staff}/api/x`)
    await reached
    t.match(await s.reload(lists(['partner', 'corp'])), { result: 'applied' })
    t.equal(lasting.frontendTokenLists, 3, "the retired app's list is kept while its request is in flight")
    s.corp.holdTokenAnswers()
    release()
    const answer = await inFlight
    t.equal(answer.status, 200, 'the request finishes its refresh', { body: answer.text })
    t.equal(s.corp.stats.refreshGrants, 1, 'once')
    await settled(2)
    t.equal(lasting.frontendTokenLists, 2, "the retired app's list is let go once it has closed")

    // Every list two providers make, twice over: the lists held stay those in use.
    const kept: number[] = []
    const inUse: number[] = []
    for (let round = 0; round < 2; round++)
      for (const staff of [['corp', 'partner'], ['corp'], ['partner'], ['partner', 'corp']] as const) {
        t.match(await s.reload(lists([...staff])), { result: 'applied' })
        // Partners signs in with ['partner']: staff's list may be the same.
        const using = new Set([JSON.stringify(staff), JSON.stringify(['partner'])]).size
        await settled(using)
        kept.push(lasting.frontendTokenLists)
        inUse.push(using)
      }
    t.same(kept, inUse, "after each reload, the running config's lists only")
    clock.advance(120_000)
    t.equal((await apiCall(jar, `${s.staff}/api/x`)).status, 200, 'the session refreshes on the new list')
    t.equal(s.corp.stats.refreshGrants, 2)
    t.equal(s.corp.stats.refreshReplays, 0, 'no refresh token replayed')
  },
)

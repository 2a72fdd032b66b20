/**
 * Logout keeps a grant when another live session of its user may share it
 * (docs/security.md, Logout and a shared grant). Each logout weighed that
 * before it ended its own session, so two of a user's browsers logging out
 * at once, on two instances, each saw the other's session live and kept
 * its grant: both sessions ended, and both grants (oidc-provider gives each
 * IdP session its own) lived on at the IdP with no session to hold them,
 * in 8 of 10 rounds here. The session now ends before its grant is
 * weighed, so the logout that weighs last sees every other ended and
 * revokes.
 */
import t from 'tap'
import { apiCall, jarFetch } from '../helpers/login.js'
import { signInAt, twoInstancesOnOneRedis } from '../helpers/replicas.js'

const ROUNDS = 10

t.test(
  'two browsers of one user logging out at once on two instances leave no grant kept by both',
  async (t) => {
    const set = await twoInstancesOnOneRedis(t)
    const kept: number[] = []
    for (let round = 0; round < ROUNDS; round++) {
      const user = `user${round}`
      const browsers = [await signInAt(set, 0, user), await signInAt(set, 1, user)]
      for (const browser of browsers) t.equal((await browser.complete()).status, 302, `${user} signs in`)
      const links = await Promise.all(
        browsers.map(
          async ({ jar, at }) =>
            (await apiCall(jar, `${at}/auth/user`)).json<{ logoutUrl: string }>().logoutUrl,
        ),
      )
      const before = set.idp.stats.revokedGrants
      const out = await Promise.all(browsers.map(({ jar, at }, i) => jarFetch(jar, `${at}${links[i]}`)))
      t.same(
        out.map((answer) => answer.status),
        [200, 200],
        'both log out at once',
      )
      for (const { jar, at } of browsers) t.equal((await apiCall(jar, `${at}/auth/user`)).status, 401)
      if (set.idp.stats.revokedGrants === before) kept.push(round)
    }
    t.same(kept, [], 'in every round the logout that weighed last revoked its grant')
    t.equal(set.idp.stats.refreshReplays, 0)
  },
)

/**
 * A sign-in as another user over a live session revokes the replaced
 * session's grant, unless another live session of its user may share it
 * (docs/security.md, the Session fixation row). Each sign-in weighed that
 * before its new session ended the old one, so when Bob and Carol signed
 * in at once over Alice's sessions in two browsers, on two instances, each
 * saw Alice's other session live and kept her grant: both of her sessions
 * ended, and both grants (oidc-provider gives each IdP session its own)
 * lived on at the IdP with no session to hold them. A grant kept for
 * another session is now weighed again once the old session has ended,
 * so the sign-in that weighs last sees the others gone and revokes.
 */
import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { apiCall, followLoginFlow, jarFetch } from '../helpers/login.js'
import { type ReplicaSet, signInAt, twoInstancesOnOneRedis } from '../helpers/replicas.js'

const ROUNDS = 10

/** `user` signs in at replica `replica`, in a browser that holds only the session cookie `over`; up to its callback. */
async function signInOver(set: ReplicaSet, replica: number, user: string, over: string) {
  const jar = new CookieJar()
  const at = set.urls[replica]!
  jar.set(at, 'gatehouse', over)
  const start = await jarFetch(jar, `${at}/auth/login?returnTo=/`)
  if (start.status !== 302 || !start.location) throw new Error(`/auth/login answered HTTP ${start.status}`)
  const back = new URL(await followLoginFlow(jar, start.location, user))
  back.host = new URL(at).host
  return { jar, at, complete: () => jarFetch(jar, back.href) }
}

t.test(
  'two users signing in at once over one user’s sessions in two browsers leave no grant kept by both',
  async (t) => {
    const set = await twoInstancesOnOneRedis(t)
    const kept: number[] = []
    for (let round = 0; round < ROUNDS; round++) {
      const alice = [await signInAt(set, 0, `alice${round}`), await signInAt(set, 1, `alice${round}`)]
      for (const browser of alice) t.equal((await browser.complete()).status, 302, 'alice signs in')
      const over = await Promise.all(
        alice.map(({ jar, at }, i) =>
          signInOver(set, i, i === 0 ? `bob${round}` : `carol${round}`, jar.get(at, 'gatehouse')!),
        ),
      )
      const before = set.idp.stats.revokedGrants
      const answers = await Promise.all(over.map((browser) => browser.complete()))
      t.same(
        answers.map((answer) => answer.status),
        [302, 302],
        'bob and carol sign in at once over her sessions',
      )
      for (const { jar, at } of alice) t.equal((await apiCall(jar, `${at}/auth/user`)).status, 401)
      if (set.idp.stats.revokedGrants === before) kept.push(round)
    }
    t.same(kept, [], 'in every round the sign-in that weighed last revoked her grant')
    t.equal(set.idp.stats.refreshReplays, 0)
  },
)

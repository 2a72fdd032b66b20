/**
 * Two frontends that sign in at one client of one IdP share its grant:
 * oidc-provider keeps one grant per client in the browser's IdP session,
 * whichever redirect URI the code went to. A sign-in refused after the
 * code exchange at one frontend gave back its refresh token whenever that
 * frontend's cookie named no session, so it revoked the grant the user's
 * session at the other frontend held (another host: its cookie never
 * comes here), whose next refresh answered 401 session_expired.
 */
import t from 'tap'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { LogLines } from '../helpers/reloadable.js'
import { type FrontendChoices, startTwoFrontends } from '../helpers/two-frontends.js'

/** Both frontends sign in at corp; staff's route redeems the session's refresh token at its first request. */
const bothAtCorp: FrontendChoices = (upstream) => ({
  staff: {
    identityProviders: ['corp'],
    routes: [route('/api/scoped', upstream, { scopes: ['openid', 'offline_access'] })],
  },
  partners: { identityProviders: ['corp'], routes: [] },
})

t.test("a sign-in refused at one frontend leaves the grant of the user's session at another", async (t) => {
  // Userinfo answering for another user (OIDC Core §5.3.2) is refused after the code exchange.
  let answerForAnother = false
  const s = await startTwoFrontends(t, bothAtCorp, {
    idp: () => ({ userinfoSubject: (sub) => (answerForAnother ? 'mallory' : sub) }),
    provider: () => ({ userinfo: true }),
  })
  const staff = await login(s.staff)
  t.equal(staff.callback.status, 302, 'signed in at staff')

  answerForAnother = true
  // The same browser, so the same IdP session: partners is another host, and staff's cookie stays there.
  const partners = await login(s.partners, { jar: staff.jar })
  t.equal(partners.callback.status, 400, 'the sign-in at partners is refused')
  t.equal(s.corp.stats.revokedGrants, 0, 'the grant staff’s session holds is not revoked')
  answerForAnother = false
  const after = await apiCall(staff.jar, `${s.staff}/api/scoped`)
  t.equal(after.status, 200, 'and staff’s session still refreshes', { body: after.text })

  // This IdP names no IdP session (no sid): a grant of a user with a session at another frontend is kept.
  answerForAnother = true
  const elsewhere = await login(s.partners, { user: 'bob' })
  t.equal(elsewhere.callback.status, 400, 'a refused sign-in of a user with no session anywhere')
  t.equal(s.corp.stats.revokedGrants, 1, 'gives back the grant no session holds')
})

/**
 * The same with the store unable to answer (Redis stopped) when the
 * refused sign-in asks which sessions may share its grant: no answer was
 * read as "none", and the grant of the user's session at the other
 * frontend was revoked. Unknown now keeps it: a grant no session holds
 * lapses at the IdP by itself, a revoked one ends a user's session.
 */
t.test('a sign-in refused while the store cannot say who shares its grant does not revoke it', async (t) => {
  if (process.env.REDIS_URL) return t.plan(0, 'fault injection needs a redis-server of our own')
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const log = new LogLines()
  let refuse = false
  const s = await startTwoFrontends(t, bothAtCorp, {
    idp: () => ({
      userinfoSubject: (sub) => {
        if (!refuse) return sub
        // After the code exchange and before the refusal's look-up: the store stops answering.
        redis.freeze()
        return 'mallory'
      },
    }),
    provider: () => ({ userinfo: true }),
    config: { store: redis.url, keyPrefix: redis.prefix, logLevel: 'info' },
    logStream: log.stream,
  })
  const staff = await login(s.staff)
  t.equal(staff.callback.status, 302, 'signed in at staff')

  refuse = true
  const partners = await login(s.partners, { jar: staff.jar })
  refuse = false
  redis.resume()
  t.equal(partners.callback.status, 400, 'the sign-in at partners is refused')
  t.equal(s.corp.stats.revokedGrants, 0, 'the grant is not revoked')
  const warning = log.lines.find((line) => /not revoked/.test(line.msg))
  t.match(
    warning,
    { level: 40, idp: 'corp', code: 'GATEHOUSE_ERR_STORE_UNAVAILABLE' },
    'a warning says why, naming the store',
  )
  t.same(
    Object.keys(warning ?? {}).filter(
      (field) => !['level', 'time', 'pid', 'hostname', 'reqId', 'msg'].includes(field),
    ),
    ['idp', 'code', 'cause'],
    'and nothing else: no token',
  )
  const after = await apiCall(staff.jar, `${s.staff}/api/scoped`)
  t.equal(after.status, 200, 'staff’s session still refreshes', { body: after.text })
})

/**
 * Without a `sid`, whether a refused sign-in's grant is a session's cannot
 * be told even at the same frontend: oidc-provider keeps a grant per IdP
 * session, so another browser's is another grant, but an IdP that keeps
 * one grant per user and client (and names no IdP session) would end the
 * user's session in every other browser with the revocation. A grant kept
 * lapses at the IdP by itself; a revoked one signs a user out.
 */
t.test(
  'without a sid, a refused sign-in keeps the grant while the user has a session at the same frontend',
  async (t) => {
    let answerForAnother = false
    const s = await startTwoFrontends(t, bothAtCorp, {
      idp: () => ({ userinfoSubject: (sub) => (answerForAnother ? 'mallory' : sub) }),
      provider: () => ({ userinfo: true }),
    })
    const first = await login(s.staff, { user: 'bob' })
    t.equal(first.callback.status, 302, 'bob signed in at staff in one browser')

    answerForAnother = true
    // Another browser: no cookie of staff's, another IdP session.
    const second = await login(s.staff, { user: 'bob' })
    answerForAnother = false
    t.equal(second.callback.status, 400, 'his sign-in at staff in another browser is refused')
    t.equal(s.corp.stats.revokedGrants, 0, 'its grant is not revoked: it may be the one his session holds')
    const after = await apiCall(first.jar, `${s.staff}/api/scoped`)
    t.equal(after.status, 200, 'and his first session still refreshes', { body: after.text })
  },
)

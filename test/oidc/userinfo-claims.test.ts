import t from 'tap'
import { sessionRefOf } from '../helpers/app.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

interface UserBody {
  sub: string
  refreshable: boolean
  claims: Record<string, unknown>
  logoutUrl: string
}

const PROTOCOL = ['aud', 'exp', 'iat', 'nonce', 'at_hash', 'c_hash', 'auth_time', 'sid', 'azp']

t.test(
  'userinfo-only profile claims reach /auth/user, without protocol claims, through login, refresh and logout',
  async (t) => {
    const clock = new TestClock()
    const stack = await startStack(t, { idp: { profileClaims: 'userinfo' }, gateway: { now: clock.now } })
    const base = stack.gateway.url
    const { jar, callback } = await login(base, { user: 'lena' })
    t.equal(callback.status, 302)

    const store = stack.gateway.app.gatehouse.stores.sessions
    const ref = sessionRefOf(stack.gateway.app, jar.get(base, 'gatehouse')!)
    const { idToken } = (await store.get(ref, clock.now()))!.tokens
    const idClaims = JSON.parse(Buffer.from(idToken!.split('.')[1]!, 'base64url').toString())
    t.equal(idClaims.name, undefined, 'the ID token has no profile claims (OIDC Core §5.4)')

    const user = (await apiCall(jar, `${base}/auth/user`)).json<UserBody>()
    t.equal(user.claims.name, 'Lena', 'name came from userinfo')
    t.equal(user.claims.locale, 'en-GB')
    t.equal(user.claims.sub, 'lena')
    t.equal(user.claims.iss, stack.idp.issuer, 'iss is kept')
    for (const claim of PROTOCOL) t.notOk(claim in user.claims, `no ${claim}`)
    t.equal(user.refreshable, true)

    clock.advance(61_000)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'refresh works')
    t.equal(stack.idp.stats.refreshGrants, 1)
    t.equal(
      (await apiCall(jar, `${base}/auth/user`)).json<UserBody>().claims.name,
      'Lena',
      'claims survive it',
    )
    const out = await jarFetch(jar, `${base}${user.logoutUrl}`)
    t.equal(out.status, 200, 'logout: the page that posts it to the IdP')
    t.equal((await apiCall(jar, `${base}/auth/user`)).status, 401)
    t.equal(stack.idp.stats.revocations, 1)
  },
)

t.test('oidc.userinfo: false keeps to the ID token', async (t) => {
  const stack = await startStack(t, {
    idp: { profileClaims: 'userinfo' },
    config: { oidc: { userinfo: false } },
  })
  const { jar } = await login(stack.gateway.url, { user: 'max' })
  const user = (await apiCall(jar, `${stack.gateway.url}/auth/user`)).json<UserBody>()
  t.equal(user.claims.name, undefined)
  t.equal(user.claims.sub, 'max')
})

t.test('an IdP without a userinfo endpoint: the ID token claims, and no userinfo call', async (t) => {
  const stack = await startStack(t, { idp: { userinfo: false } })
  t.equal(stack.gateway.app.gatehouse.oidc.metadata!.userinfo_endpoint, undefined)
  const { jar } = await login(stack.gateway.url, { user: 'ned' })
  t.equal((await apiCall(jar, `${stack.gateway.url}/auth/user`)).json<UserBody>().claims.name, 'Ned')
})

t.test('session.claims keeps exactly the listed claims', async (t) => {
  const stack = await startStack(t, { idp: { profileClaims: 'userinfo' }, config: { claims: ['name'] } })
  const { jar } = await login(stack.gateway.url, { user: 'ola' })
  const user = (await apiCall(jar, `${stack.gateway.url}/auth/user`)).json<UserBody>()
  t.same(user.claims, { name: 'Ola' })
  t.equal(user.sub, 'ola', 'sub is always there, outside claims')
})

t.test('a userinfo sub that is not the ID token sub fails the login (OIDC Core §5.3.2)', async (t) => {
  const stack = await startStack(t, { idp: { userinfoSubject: () => 'mallory' } })
  const base = stack.gateway.url
  const { jar, callback } = await login(base, { user: 'pia' })
  t.equal(callback.status, 400, 'a 4xx page')
  t.match(callback.headers.get('content-type'), /text\/html/)
  t.match(callback.text, /sub/)
  t.equal(jar.get(base, 'gatehouse'), undefined, 'no session cookie')
  t.same(await stack.gateway.app.gatehouse.stores.sessions.idsBySub('pia'), [], 'no session stored')
  t.same(await stack.gateway.app.gatehouse.stores.sessions.idsBySub('mallory'), [])
})

import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { defaultRoutes, startStack } from '../helpers/stack.js'

t.test("a client route without a session is 401 before the gateway's credentials are spent", async (t) => {
  const stack = await startStack(t, {
    routes: (upstream) => [
      ...defaultRoutes(upstream),
      route('/api/open', upstream, { token: 'client', scopes: ['reports.read'], anonymous: true }),
    ],
  })
  const base = stack.gateway.url

  const anonymous = await apiCall(new CookieJar(), `${base}/api/reports`)
  t.equal(anonymous.status, 401)
  t.same(anonymous.json(), { error: 'unauthenticated', message: anonymous.json().message })
  t.equal(stack.idp.stats.clientCredentialsGrants, 0, 'no client-credentials grant was asked for')
  t.equal(stack.upstream.requests.length, 0, 'nothing reached the upstream')

  const { jar } = await login(base)
  const signedIn = await apiCall(jar, `${base}/api/reports`)
  t.equal(signedIn.status, 200, 'a signed-in caller is served')
  const sent = stack.upstream.requests.at(-1)!.authorization!
  t.match(sent, /^Bearer /)
  t.ok(await stack.idp.isActive(sent.slice(7)), "with the gateway's client-credentials token")
  t.equal(stack.idp.stats.clientCredentialsGrants, 1)

  // A cookie whose session is gone counts as no session.
  const store = stack.gateway.app.gatehouse.stores.sessions
  for (const id of await store.idsBySub('alice')) await store.delete(id)
  t.equal((await apiCall(jar, `${base}/api/reports`)).status, 401, 'an ended session: 401')

  const open = await apiCall(new CookieJar(), `${base}/api/open`)
  t.equal(open.status, 200, 'anonymous: true serves anyone, by explicit choice')
  t.match(stack.upstream.requests.at(-1)!.authorization, /^Bearer /)
})

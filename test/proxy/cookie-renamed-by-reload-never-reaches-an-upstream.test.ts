import t from 'tap'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { configText, startReloadable } from '../helpers/reloadable.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'
import { startTwoFrontends } from '../helpers/two-frontends.js'

/**
 * A reload that renames the session cookie leaves the browsers holding the
 * old one, and the session it seals in the store: live again on a replica
 * the change has not reached yet, or after a reload that takes the rename
 * back. The proxy knew only the running config's names, so from the
 * rename on the old cookie went to every upstream with every request, a
 * public route's too, and an upstream could set one under the old name.
 */
t.test(
  'a session cookie a reload renamed is still the gateway’s: no upstream is sent it or may set it',
  async (t) => {
    const setter = await scriptedUpstream()
    t.teardown(() => setter.close())
    setter.answer((res) => {
      res.setHeader('set-cookie', ['gatehouse=planted-by-the-upstream; Path=/', 'app_pref=1; Path=/'])
      res.end('ok')
    })
    const stack = await startReloadable(t, (upstream) => [
      route('/api/orders', upstream),
      route('/public', upstream, { token: 'none', csrf: false }),
      route('/setter', setter.url, { token: 'none', csrf: false }),
    ])
    const { jar } = await login(stack.url)
    const old = jar.get(stack.url, 'gatehouse')!
    const seenCookie = () => stack.upstream.requests.at(-1)?.headers.cookie ?? ''

    stack.configMap.write(configText({ ...stack.input, cookieName: 'renamed' }))
    t.match(await stack.running.reload(), { result: 'applied' })
    t.equal((await apiCall(jar, `${stack.url}/public/x`)).status, 200)
    t.notMatch(seenCookie(), 'gatehouse=', 'a public route does not forward the old cookie')

    await login(stack.url, { jar })
    t.equal((await apiCall(jar, `${stack.url}/api/orders/x`)).status, 200, 'signed in again')
    t.equal(seenCookie(), '', 'nor does a route of the new session: neither cookie goes upstream')

    const planted = await apiCall(jar, `${stack.url}/setter/x`)
    t.same(planted.headers.getSetCookie(), ['app_pref=1; Path=/'], 'an upstream cannot set the old name')

    // Why it matters: the old cookie still seals a live session.
    stack.configMap.write(configText(stack.input))
    t.match(await stack.running.reload(), { result: 'applied' })
    jar.set(stack.url, 'gatehouse', old)
    t.equal(
      (await apiCall(jar, `${stack.url}/auth/user`)).status,
      200,
      'the old cookie opens its session once the rename is taken back',
    )
  },
)

t.test(
  "a frontend's cookie a reload renamed is not sent to that frontend's upstreams or another's",
  async (t) => {
    const routes = (upstream: string) => [route('/public', upstream, { token: 'none', csrf: false })]
    const stack = await startTwoFrontends(t, (upstream) => ({
      staff: { routes: routes(upstream) },
      partners: { routes: routes(upstream) },
    }))
    const { jar } = await login(stack.staff)
    t.ok(jar.get(stack.staff, 'gatehouse-staff'), 'signed in at staff')
    t.match(
      await stack.reload((upstream) => ({
        staff: { routes: routes(upstream), cookieName: 'staff-renamed' },
        partners: { routes: routes(upstream) },
      })),
      { result: 'applied' },
    )
    t.equal((await apiCall(jar, `${stack.staff}/public/x`)).status, 200)
    t.equal(
      stack.upstream.requests.at(-1)?.headers.cookie,
      undefined,
      'the old cookie stays with the gateway',
    )
  },
)

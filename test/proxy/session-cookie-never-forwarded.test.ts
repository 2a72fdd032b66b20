import t from 'tap'
import { route } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { rawCall, scriptedUpstream } from '../helpers/scripted-upstream.js'
import { startStack } from '../helpers/stack.js'

t.test('whatever spelling the session plugin reads as the session, the upstream never gets', async (t) => {
  const upstream = await scriptedUpstream()
  t.teardown(() => upstream.close())
  const stack = await startStack(t, {
    routes: () => [
      route('/api/user', upstream.url),
      route('/api/maybe', upstream.url, { token: 'optional-user' }),
    ],
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  const sealed = /gatehouse=([^;]+)/.exec(jar.header(`${base}/api/user/x`)!)![1]!

  const read: [string, string][] = [
    ['a space before =', `app=1; gatehouse =${sealed}`],
    ['a tab before =', `app=1; gatehouse\t=${sealed}`],
    ['padding all round', `app=1;  \tgatehouse \t=\t${sealed}`],
    ['twice', `gatehouse=${sealed}; app=1; gatehouse=${sealed}`],
    ['a forged copy after the real one', `gatehouse=${sealed}; app=1; gatehouse=forged`],
  ]
  for (const [form, cookie] of read) {
    const res = await rawCall(`${base}/api/user/x`, { cookie })
    t.equal(res.status, 200, `${form}: the session plugin reads it as the session`)
    const seen = upstream.seen.at(-1)!
    t.match(seen.headers.authorization, /^Bearer /, form)
    t.equal(seen.headers.cookie, 'app=1', `${form}: only app=1 goes upstream`)
  }

  const other: [string, string][] = [
    ['upper case', `app=1; GATEHOUSE=${sealed}`],
    ['prefixed', `app=1; __Host-gatehouse=${sealed}`],
    ['login cookie, mixed case', `app=1; Gatehouse-Login=${sealed}`],
  ]
  for (const [form, cookie] of other) {
    const res = await rawCall(`${base}/api/maybe/x`, { cookie })
    t.equal(res.status, 200, form)
    t.equal(upstream.seen.at(-1)!.headers.cookie, 'app=1', `${form}: near-copies of our names stay here too`)
  }
})

t.test('the cookies of sign-ins in progress never reach an upstream', async (t) => {
  const upstream = await scriptedUpstream()
  t.teardown(() => upstream.close())
  const stack = await startStack(t, {
    routes: () => [route('/api/maybe', upstream.url, { token: 'optional-user' })],
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  // Two tabs sent to sign in again, then an API call from a third.
  await jarFetch(jar, `${base}/auth/login?returnTo=/a`)
  await jarFetch(jar, `${base}/auth/login?returnTo=/b`)
  jar.set(base, 'app', '1')
  t.equal(jar.header(base)?.match(/gatehouse-login\./g)?.length, 2, 'the browser holds both')
  const res = await apiCall(jar, `${base}/api/maybe/x`)
  t.equal(res.status, 200)
  t.equal(upstream.seen.at(-1)!.headers.cookie, 'app=1', 'only app=1 goes upstream')
  for (const cookie of ['app=1; GATEHOUSE-LOGIN.abc=x', 'app=1; __Host-Http-gatehouse-login.abc=x']) {
    await rawCall(`${base}/api/maybe/x`, { cookie })
    t.equal(upstream.seen.at(-1)!.headers.cookie, 'app=1', `${cookie}: near-copies stay here too`)
  }
})

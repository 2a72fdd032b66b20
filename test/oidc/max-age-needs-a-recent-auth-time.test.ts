/**
 * OIDC Core §3.1.2.1, §3.1.3.7 item 11: a login asked for with `max_age`
 * takes an ID token only with an `auth_time` that recent. An OP that
 * ignores the parameter, and hands back an old sign-in's token, must not
 * pass for a fresh authentication the deployment asked for.
 */
import t from 'tap'
import { discoveredClient, signInWithIdToken } from '../helpers/mock-idp.js'

const seconds = () => Math.floor(Date.now() / 1000)

const userinfo = { oidc: { userinfo: false } } as const

t.test('max_age from authorizationParams: an authentication older than it fails the login', async (t) => {
  const mock = await discoveredClient(t, {
    oidc: { ...userinfo.oidc, authorizationParams: { max_age: '300' } },
  })
  await t.rejects(signInWithIdToken(mock, {}, { auth_time: seconds() - 3600 }), {
    code: 'GATEHOUSE_ERR_LOGIN_FAILED',
    message: /too much time has elapsed since the last End-User authentication/,
  })
  t.match(mock.failures, [{ operation: 'code_exchange', verdict: 'login_failed' }])
})

t.test('max_age passed through by the SPA: an ID token without auth_time fails the login', async (t) => {
  const mock = await discoveredClient(t, userinfo)
  await t.rejects(signInWithIdToken(mock, { max_age: '0' }, {}), {
    code: 'GATEHOUSE_ERR_LOGIN_FAILED',
    message: /auth_time/,
  })
})

t.test('max_age with a recent auth_time signs in; without max_age, auth_time is not asked for', async (t) => {
  const asked = await discoveredClient(t, userinfo)
  const authTime = seconds() - 10
  const fresh = await signInWithIdToken(asked, { max_age: '300' }, { auth_time: authTime })
  t.equal(fresh.sub, 'alice')
  // Read when a back-channel logout of the user came during the sign-in (Sessions.create).
  t.equal(fresh.authTime, authTime, 'the sign-in says when the user authenticated')
  const plain = await discoveredClient(t, userinfo)
  t.equal(
    (await signInWithIdToken(plain, {}, { auth_time: 1 })).sub,
    'alice',
    'no max_age, no check (OIDC Core §2)',
  )
  const unsaid = await discoveredClient(t, userinfo)
  t.equal(
    (await signInWithIdToken(unsaid, {}, {})).authTime,
    undefined,
    'an ID token without auth_time says nothing',
  )
})

t.test('a longer max_age passed through does not lift the configured one at the callback', async (t) => {
  const mock = await discoveredClient(t, {
    oidc: { ...userinfo.oidc, authorizationParams: { max_age: '300' } },
  })
  await t.rejects(signInWithIdToken(mock, { max_age: '86400' }, { auth_time: seconds() - 3600 }), {
    code: 'GATEHOUSE_ERR_LOGIN_FAILED',
    message: /too much time has elapsed since the last End-User authentication/,
  })
})

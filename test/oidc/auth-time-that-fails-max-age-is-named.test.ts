/**
 * An ID token refused under `max_age` for its `auth_time` (OIDC Core
 * §3.1.3.7 item 11) names the `auth_time` and its age; one of 0, which
 * Glewlwyd 2.7 writes in every ID token of its token endpoint, says that no
 * sign-in can meet a `max_age` with that provider, and what to remove.
 * Until 2026-12-07 both said only "too much time has elapsed since the last
 * End-User authentication".
 */
import t from 'tap'
import { discoveredClient, signInWithIdToken } from '../helpers/mock-idp.js'

const seconds = () => Math.floor(Date.now() / 1000)
const withMaxAge = { oidc: { userinfo: false, authorizationParams: { max_age: '300' } } } as const

t.test('auth_time 0: the reason says the provider does not record it and to remove max_age', async (t) => {
  const mock = await discoveredClient(t, withMaxAge)
  await t.rejects(signInWithIdToken(mock, {}, { auth_time: 0 }), {
    code: 'GATEHOUSE_ERR_LOGIN_FAILED',
    message:
      /too much time has elapsed since the last End-User authentication: the ID token's auth_time is 0 \(1970-01-01\), .*Glewlwyd 2\.7.*remove max_age from oidc\.authorizationParams and auth\.loginParams/,
  })
  t.match(mock.failures, [{ operation: 'code_exchange', verdict: 'login_failed' }])
})

t.test('an old auth_time: the reason names it and how long ago it was', async (t) => {
  const mock = await discoveredClient(t, withMaxAge)
  const authTime = seconds() - 3600
  const at = new Date(authTime * 1000).toISOString().replace(/\.000Z$/, 'Z')
  const refused = await signInWithIdToken(mock, {}, { auth_time: authTime }).then(
    () => undefined,
    (err: Error) => err,
  )
  t.match(refused, {
    code: 'GATEHOUSE_ERR_LOGIN_FAILED',
    message: `too much time has elapsed since the last End-User authentication: the ID token's auth_time is ${at}, `,
  })
  const ago = Number(/, (\d+) s before it was checked/.exec(refused?.message ?? '')?.[1])
  t.ok(ago >= 3600 && ago < 3660, 'and how many seconds before the check', { reason: refused?.message })
  t.notMatch(refused?.message, /Glewlwyd/, 'with no word of a provider that does not record it')
})

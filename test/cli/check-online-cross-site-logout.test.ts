/**
 * `auth.endSession: post` from another site than the IdP's end-session
 * endpoint carries none of its SameSite=Lax cookies: LemonLDAP::NG (Lax
 * by default) then keeps its session, and `check --online` said nothing.
 * lemonldap.test.ts shows the session living on; here, which pairs of
 * origins the hint is given for.
 */
import type * as oauth from 'oauth4webapi'
import t from 'tap'
import { compare } from '../../src/cli/check-online.js'
import type { GatehouseConfig } from '../../src/config/types.js'
import { testConfig } from '../helpers/gateway.js'

const as = (endSession: string | undefined): oauth.AuthorizationServer => ({
  issuer: 'https://sso.example.com',
  authorization_endpoint: 'https://sso.example.com/auth',
  token_endpoint: 'https://sso.example.com/token',
  ...(endSession ? { end_session_endpoint: endSession } : {}),
})

const config = (publicUrl: string, endSession?: GatehouseConfig['auth']['endSession']) =>
  testConfig({
    port: 3000,
    publicUrl,
    issuer: 'https://sso.example.com',
    routes: [],
    ...(endSession ? { endSession } : {}),
  })

const hinted = (report: ReturnType<typeof compare>) => report.hints.some((h) => h.includes('another site'))

t.test('the hint is given only across sites, and only for post', async (t) => {
  const cases: [string, string | undefined, GatehouseConfig['auth']['endSession'] | undefined, boolean][] = [
    ['https://app.example.com', 'https://sso.example.com/logout', undefined, false],
    ['https://example.com', 'https://sso.example.com/logout', undefined, false],
    ['https://app.example.org', 'https://sso.example.com/logout', undefined, true],
    ['http://localhost:3000', 'https://localhost:8443/logout', undefined, true],
    ['http://localhost:3000', 'http://127.0.0.1:8080/oauth2/logout', undefined, true],
    ['http://127.0.0.1:3000', 'http://127.0.0.1:8080/oauth2/logout', undefined, false],
    ['https://app.example.org', 'https://sso.example.com/logout', 'get', false],
    ['https://app.example.org', 'https://sso.example.com/logout', 'client-id', false],
    ['https://app.example.org', undefined, undefined, false],
  ]
  for (const [publicUrl, endpoint, mode, expected] of cases)
    t.equal(
      hinted(compare(config(publicUrl, mode), as(endpoint))),
      expected,
      `${publicUrl} -> ${endpoint} (${mode ?? 'post'})`,
    )
})

t.test('the hint names both origins and the setting to use', async (t) => {
  const [hint] = compare(
    config('https://app.example.org'),
    as('https://sso.example.com/logout'),
  ).hints.filter((h) => h.includes('another site'))
  t.match(
    hint,
    'end_session_endpoint (https://sso.example.com) is on another site than https://app.example.org',
  )
  t.match(hint, 'use auth.endSession: get')
})

/**
 * What counts as an OAuth error body where oauth4webapi does not look for
 * one (a 4xx labelled as a page, a 2xx instead of its answer): the same
 * rule it applies to a 4xx's JSON, so a page is never taken for a refusal.
 */
import t from 'tap'
import { isOAuthErrorJson, oauthErrorOf } from '../../src/oidc/oauth-error-body.js'

t.test('an object with a non-empty error string is one, with its description', async (t) => {
  t.same(oauthErrorOf({ error: 'invalid_grant', error_description: 'revoked' }), {
    error: 'invalid_grant',
    error_description: 'revoked',
  })
  t.same(oauthErrorOf({ error: 'bad_refresh_token' }), {
    error: 'bad_refresh_token',
    error_description: undefined,
  })
})

t.test('anything else is not', async (t) => {
  for (const value of [
    { error: '' },
    { error: 1 },
    { message: 'no' },
    [{ error: 'x' }],
    null,
    'invalid_grant',
    400,
  ]) {
    t.equal(oauthErrorOf(value), undefined, JSON.stringify(value))
  }
})

t.test('in text: JSON that is one, never a page or plain words that mention one', async (t) => {
  t.ok(isOAuthErrorJson(' {"error":"invalid_grant"}\n'))
  t.notOk(isOAuthErrorJson('<html><body>{"error":"invalid_grant"}</body></html>'))
  t.notOk(isOAuthErrorJson('invalid_grant'))
  t.notOk(isOAuthErrorJson(''))
})

/**
 * A framework's generic error body is not an OAuth error (RFC 6749 §5.2).
 * Spring Boot answers any request it has no handler for, or that Spring
 * Security refuses, with `{"timestamp":…,"status":404,"error":"Not Found",
 * "path":…}`: its `error` is the status's reason phrase. Read as an unknown
 * OAuth code, a 404 from a token endpoint that moved in a deploy (or a 403
 * from a filter in front of it) ended every session whose token came due,
 * where the same 404 as a page or as JSON without `error` keeps them
 * (`refused`). It is now read as a body without an OAuth error, by its
 * status, and the reason says what it was.
 */

import t from 'tap'
import { idpFailureOf } from '../../src/oidc/translate.js'
import { sessionRefOf } from '../helpers/app.js'
import { apiCall, login } from '../helpers/login.js'
import { discoveredClient, tokenAnswer } from '../helpers/mock-idp.js'
import { startObservedStack } from '../helpers/observed-stack.js'

const springBody = (status: number, error: string) => ({
  timestamp: '2026-12-06T20:40:00.000+00:00',
  status,
  error,
  path: '/token',
})

t.test(
  "a refresh answered with Spring Boot's 404 body: 503, the session kept, and it refreshes once the endpoint is back",
  async (t) => {
    const stack = await startObservedStack(t)
    const base = stack.gateway.url
    const { jar } = await login(base)
    const store = stack.gateway.app.gatehouse.stores.sessions
    const ref = sessionRefOf(stack.gateway.app, jar.get(base, 'gatehouse')!)
    stack.idp.answer('token', { grantType: 'refresh_token', status: 404, body: springBody(404, 'Not Found') })
    stack.clock.advance(61_000)

    const api = await apiCall(jar, `${base}/api/orders`)
    t.equal(api.status, 503, 'not the end of the session')
    t.equal(api.json().error, 'token_refresh_unavailable')
    t.ok(await store.get(ref, stack.clock.now()), 'the session is kept')
    t.match(
      stack.lines.find((l) => /^access token refresh failed/.test(l.msg)),
      {
        level: 40,
        status: 404,
        reason: 'HTTP 404 without an OAuth error body (its error "Not Found" is the status\'s reason phrase)',
      },
    )
    t.notOk(
      stack.lines.some((l) => /session ended/.test(l.msg)),
      'no line says the session ended',
    )

    stack.idp.answer('token')
    stack.clock.advance(Number(api.headers.get('retry-after')) * 1_000)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'the endpoint is back: refreshed')
    t.equal(stack.idp.stats.refreshReplays, 0)
  },
)

t.test('each status is read as if its body had no error; a real OAuth code still decides', async (t) => {
  const cases: [number, unknown, string, string][] = [
    [404, springBody(404, 'Not Found'), 'refused', 'unavailable'],
    [403, springBody(403, 'Forbidden'), 'refused', 'unavailable'],
    [405, springBody(405, 'Method Not Allowed'), 'refused', 'unavailable'],
    // The gateway's own credentials, refused by a filter that writes no challenge.
    [401, springBody(401, 'Unauthorized'), 'unauthorized', 'client_refused'],
    // A bare 400 is RFC 6749 §5.2's refusal either way (answers.ts `bad_request`).
    [400, springBody(400, 'bad request'), 'bad_request', 'session_over'],
    // Not the reason phrase of its own status: an OAuth code, unknown or not.
    [403, { error: 'token_revoked_by_policy' }, 'other_oauth_error', 'session_over'],
    [404, { error: 'Forbidden' }, 'other_oauth_error', 'session_over'],
    // Joined as an OAuth code is: a code, whatever it spells.
    [404, { error: 'not_found' }, 'other_oauth_error', 'session_over'],
    [403, { error: 'invalid_grant' }, 'invalid_grant', 'session_over'],
  ]
  for (const [status, body, answer, verdict] of cases) {
    const { idp, oidc } = await discoveredClient(t)
    void tokenAnswer(idp, status, body)
    const err = await oidc
      .refresh({ accessToken: 'a', accessTokenExpiresAt: 0, accessTokenLifetime: 1, refreshToken: 'r' })
      .catch((e: unknown) => e)
    const what = `${status} ${JSON.stringify((body as { error: string }).error)}`
    t.match(idpFailureOf(err), { answer, verdict, status }, what)
  }
})

/**
 * Logout deletes the session, then revokes its refresh token (RFC 7009).
 * The record was the token's only copy, so a revocation the IdP did not
 * answer (down, 503, a reset) was a warning and nothing more: the grant
 * lived on at the IdP until the token expired, days with oidc-provider,
 * which keeps an `offline_access` grant through its own end-session too.
 * The revocation is now owed, held in the instance's memory, and made
 * once the IdP answers; a config reload keeps it. So is one a sign-in
 * over another user's session, or "log out everywhere", could not make,
 * and that of the refresh token a sign-in refused after its code exchange
 * was issued (until 2026-12-08 a warning only: no session holds that
 * token, so nothing else would ever revoke its grant).
 */
import t from 'tap'
import { route } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { refreshingStack } from '../helpers/refreshing-stack.js'
import { configText, LogLines, startReloadable } from '../helpers/reloadable.js'
import { until } from '../helpers/websocket.js'

const REVOKED = 'refresh token revoked once the identity provider answered again'

t.test('a logout whose revocation the IdP did not answer revokes once it answers', async (t) => {
  const { stack, base, log, refreshTokenOf } = await refreshingStack(t)
  const { jar } = await login(base)
  const token = await refreshTokenOf(jar)
  const { logoutUrl } = (await apiCall(jar, `${base}/auth/user`)).json<{ logoutUrl: string }>()

  stack.idp.setDown('503')
  const out = await jarFetch(jar, `${base}${logoutUrl}`)
  t.equal(out.status, 200, 'the user is logged out all the same')
  t.equal((await apiCall(jar, `${base}/auth/user`)).status, 401)
  await log.seen('the revocation owed', (line) => line.code === 'GATEHOUSE_REVOCATION_OWED')
  t.equal((await stack.idp.introspect(token)).active, true, 'the token still lives at the IdP')

  stack.idp.setDown('ok')
  await log.seen('the revocation made', (line) => line.msg === REVOKED)
  t.equal((await stack.idp.introspect(token)).active, false, 'the token is dead at the IdP')
  t.equal(stack.idp.stats.revokedGrants, 1, 'and its grant revoked')
  t.notOk(log.lines.some((line) => line.code === 'GATEHOUSE_REVOCATION_LOST'))
  t.notOk(
    log.lines.some((line) => JSON.stringify(line).includes(token)),
    'the token is never logged',
  )
})

t.test('a sign-in as another user over a session, the revocation refused 503, revokes later', async (t) => {
  const { stack, base, log, refreshTokenOf, withCookieOf } = await refreshingStack(t)
  const alice = await login(base)
  const token = await refreshTokenOf(alice.jar)
  stack.idp.answer('revocation', { status: 503, body: 'busy', headers: { 'retry-after': '1' } })
  const bob = await login(base, { user: 'bob', jar: withCookieOf(alice.jar) })
  t.equal(bob.callback.status, 302, 'bob signs in over alice’s session')
  await log.seen('the revocation owed', (line) => line.code === 'GATEHOUSE_REVOCATION_OWED')
  t.equal((await stack.idp.introspect(token)).active, true)
  stack.idp.answer('revocation')
  await log.seen('the revocation made', (line) => line.msg === REVOKED)
  t.equal((await stack.idp.introspect(token)).active, false, 'alice’s token is dead at the IdP')
})

t.test('a sign-in refused after its code exchange, the revocation refused 503, revokes later', async (t) => {
  const { stack, base, log } = await refreshingStack(t)
  // Refused once the code is redeemed: the IdP has issued a refresh token no session will hold.
  stack.idp.answer('userinfo', {
    status: 401,
    headers: { 'www-authenticate': 'Bearer realm="idp", error="invalid_token"' },
  })
  stack.idp.answer('revocation', { status: 503, body: 'busy', headers: { 'retry-after': '1' } })
  const { callback } = await login(base)
  t.equal(callback.status, 400, 'the sign-in is refused')
  t.match(
    log.lines.find((line) => /revoking its refresh token failed too/.test(String(line.msg))),
    { level: 40, code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE' },
    'a warning says the revocation failed',
  )
  await log.seen('the revocation owed', (line) => line.code === 'GATEHOUSE_REVOCATION_OWED')
  t.equal(stack.idp.stats.revokedGrants, 0)
  stack.idp.answer('revocation')
  await log.seen('the revocation made', (line) => line.msg === REVOKED)
  t.equal(stack.idp.stats.revokedGrants, 1, 'the grant the refused sign-in was issued is revoked')
})

t.test('log out everywhere, its revocation unanswered, revokes once the IdP answers', async (t) => {
  const { stack, base, log, refreshTokenOf } = await refreshingStack(t)
  const { jar } = await login(base)
  const token = await refreshTokenOf(jar)
  stack.idp.setDown('reset')
  const out = await jarFetch(jar, `${base}/auth/logout-everywhere`, {
    method: 'POST',
    headers: { 'x-csrf': '1' },
  })
  t.equal(out.status, 200, 'every session ends all the same')
  await log.seen('the revocation owed', (line) => line.code === 'GATEHOUSE_REVOCATION_OWED')
  stack.idp.setDown('ok')
  await log.seen('the revocation made', (line) => line.msg === REVOKED)
  t.equal((await stack.idp.introspect(token)).active, false, 'the token is dead at the IdP')
})

t.test('a revocation owed is made after a config reload', async (t) => {
  const logs = new LogLines()
  const stack = await startReloadable(t, (upstream) => [route('/api', upstream)], {
    accessTokenTtl: 600,
    input: { logLevel: 'debug' },
    logStream: logs.stream,
  })
  const base = stack.url
  const { jar } = await login(base)
  const { logoutUrl } = (await apiCall(jar, `${base}/auth/user`)).json<{ logoutUrl: string }>()
  stack.idp.setDown('503')
  t.equal((await jarFetch(jar, `${base}${logoutUrl}`)).status, 200)
  await logs.seen('the revocation owed', (line) => line.code === 'GATEHOUSE_REVOCATION_OWED')

  stack.configMap.write(
    configText({ ...stack.input, routes: [...stack.input.routes, route('/other', stack.upstream.url)] }),
  )
  t.ok(await until(() => stack.running.config.routes.length === 2), 'the reload applies')
  await logs.seen('the previous config closed', (line) => /previous config has finished/.test(line.msg))
  stack.idp.setDown('ok')
  await logs.seen('the revocation made', (line) => line.msg === REVOKED)
  t.equal(stack.idp.stats.revokedGrants, 1, 'her grant is revoked')
  t.notOk(
    logs.lines.some((line) => line.code === 'GATEHOUSE_REVOCATION_LOST'),
    'the reload drops nothing owed',
  )
})

/**
 * Probe: a reload that gives the owed token's provider name another
 * issuer. The token is that IdP's to revoke alone: handed to the IdP now
 * named so, it would tell that IdP a refresh token it never issued.
 */
t.test(
  "a revocation owed whose provider's name a reload gives another IdP is lost, not sent there",
  async (t) => {
    const logs = new LogLines()
    const stack = await startReloadable(t, (upstream) => [route('/api', upstream)], {
      accessTokenTtl: 600,
      watch: false,
      second: {},
      input: (issuer) => ({ logLevel: 'debug', identityProviders: [{ name: 'a', issuer }] }),
      logStream: logs.stream,
    })
    const base = stack.url
    const second = stack.second!
    const { jar } = await login(base, { params: { idp: 'a' } })
    const { logoutUrl } = (await apiCall(jar, `${base}/auth/user`)).json<{ logoutUrl: string }>()
    stack.idp.setDown('503')
    t.equal((await jarFetch(jar, `${base}${logoutUrl}`)).status, 200)
    await logs.seen('the revocation owed', (line) => line.code === 'GATEHOUSE_REVOCATION_OWED')

    stack.configMap.write(
      configText({ ...stack.input, identityProviders: [{ name: 'a', issuer: second.issuer }] }),
    )
    t.match(await stack.running.reload(), { result: 'applied' }, 'a now signs in at the second IdP')
    stack.idp.setDown('ok')
    const lost = await logs.seen(
      'the revocation given up',
      (line) => line.code === 'GATEHOUSE_REVOCATION_LOST',
    )
    t.match(lost, { idp: 'a', reason: 'provider_gone' })
    t.equal(second.stats.revocations, 0, 'the second IdP is sent nothing')
    t.equal(stack.idp.stats.revocations, 0, 'nor is the first, which no provider names now')
    t.notOk(
      logs.lines.some((line) => line.msg === REVOKED),
      'nothing is said to be revoked',
    )
  },
)

/**
 * An IdP that refuses a revocation (RFC 7009 §2.2.1: 400 with an RFC 6749
 * §5.2 error) answered: retried, it refuses alike. Such a refusal was taken
 * for an outage (GATEHOUSE_ERR_IDP_UNAVAILABLE) and owed, tried again for
 * an hour, one call per pass, each logout's token held in memory for that
 * hour and then said lost as expired; an owed one the IdP then refused
 * stayed owed too. A refusal is now given up at once, naming the answer,
 * and no log line repeats the token the IdP echoes.
 */
t.test(
  'a revocation refused 400, at logout or when owed, is given up, not owed, and logs no token',
  async (t) => {
    const { stack, base, log, refreshTokenOf } = await refreshingStack(t)
    const echoing = (token: string) => ({
      status: 400,
      body: JSON.stringify({ error: 'invalid_request', error_description: `token ${token} is not known` }),
      headers: { 'content-type': 'application/json' },
    })
    const owedLines = () => log.lines.filter((line) => line.code === 'GATEHOUSE_REVOCATION_OWED').length
    const first = await login(base)
    const firstToken = (await refreshTokenOf(first.jar))!
    stack.idp.answer('revocation', echoing(firstToken))
    const firstOut = await jarFetch(first.jar, `${base}/auth/logout-everywhere`, {
      method: 'POST',
      headers: { 'x-csrf': '1' },
    })
    t.equal(firstOut.status, 200, 'the session ends all the same')
    t.equal(owedLines(), 0, 'a revocation the IdP refused is not owed')

    const second = await login(base)
    const secondToken = (await refreshTokenOf(second.jar))!
    stack.idp.answer('revocation', { status: 503, body: 'busy', headers: { 'retry-after': '1' } })
    await jarFetch(second.jar, `${base}/auth/logout-everywhere`, {
      method: 'POST',
      headers: { 'x-csrf': '1' },
    })
    await log.seen('the revocation owed', (line) => line.code === 'GATEHOUSE_REVOCATION_OWED')
    stack.idp.answer('revocation', echoing(secondToken))
    const lost = await log.seen('the owed one given up', (line) => line.code === 'GATEHOUSE_REVOCATION_LOST')
    t.match(lost, { idp: 'default', reason: 'invalid_request' }, "given up at the IdP's refusal, naming it")
    const text = JSON.stringify(log.lines)
    t.notOk(text.includes(firstToken), 'the refused token is in no log line')
    t.notOk(text.includes(secondToken), 'nor the owed one')
  },
)

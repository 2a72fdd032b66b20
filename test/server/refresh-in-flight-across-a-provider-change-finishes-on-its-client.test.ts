/**
 * Probe: a reload that changes provider a's entry (a new client, started
 * from the running one's document) while a request of the old app waits
 * on a's refresh at the IdP. The old app's client is retired with the
 * reload; it must not be closed under the refresh (undici's dispatcher
 * closed: an error, a 5xx, a rotated refresh token lost and replayed).
 */
import t from 'tap'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { configText, LogLines, startReloadable } from '../helpers/reloadable.js'

t.test(
  'a refresh held at the IdP across a reload that changes its provider finishes on its client',
  async (t) => {
    const clock = new TestClock()
    const stack = await startReloadable(t, (upstream) => [route('/api/orders', upstream)], {
      watch: false,
      now: clock.now,
      input: (issuer) => ({ identityProviders: [{ name: 'a', issuer }] }),
    })
    const { running, url, idp, configMap } = stack
    const { jar } = await login(url, { params: { idp: 'a' } })
    const before = running.app.gatehouse.providers.get('a')!

    let release!: () => void
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    let reachedIt!: () => void
    const reached = new Promise<void>((resolve) => {
      reachedIt = resolve
    })
    idp.holdTokenAnswers(() => {
      reachedIt()
      return held
    })
    clock.advance(120_000)
    const inFlight = apiCall(jar, `${url}/api/orders`)
    await reached

    const scopes = [...running.config.identityProviders[0]!.scopes, 'email']
    configMap.write(
      configText({ ...stack.input, identityProviders: [{ name: 'a', issuer: idp.issuer, scopes }] }),
    )
    t.match(await running.reload(), { result: 'applied' }, 'the reload applies while the refresh is held')
    t.not(running.app.gatehouse.providers.get('a'), before, 'a has a new client')
    idp.holdTokenAnswers()
    release()
    const answer = await inFlight
    t.equal(answer.status, 200, 'the held refresh is answered on the client it started with', {
      body: answer.text,
    })
    t.equal(idp.stats.refreshGrants, 1)
    clock.advance(120_000)
    t.equal(
      (await apiCall(jar, `${url}/api/orders`)).status,
      200,
      'and the rotated token refreshes on the new client',
    )
    t.equal(idp.stats.refreshGrants, 2)
    t.equal(idp.stats.refreshReplays, 0, 'no refresh token replayed')
    t.equal(idp.stats.revokedGrants, 0, 'no grant revoked')
  },
)

t.test(
  "a refresh answered past the IdP's timeout, its provider changed by a reload meanwhile, is kept through the retired client",
  async (t) => {
    const clock = new TestClock()
    const logs = new LogLines()
    const stack = await startReloadable(t, (upstream) => [route('/api/orders', upstream)], {
      watch: false,
      now: clock.now,
      logStream: logs.stream,
      input: (issuer) => ({
        logLevel: 'info',
        idpTimeout: 1_000,
        identityProviders: [{ name: 'a', issuer }],
      }),
    })
    const { running, url, idp, configMap } = stack
    const { jar } = await login(url, { params: { idp: 'a' } })
    let release!: () => void
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    idp.holdTokenAnswers(() => held)
    clock.advance(120_000)
    const first = await apiCall(jar, `${url}/api/orders`)
    t.equal(first.status, 503, "the request that asked is answered at the IdP's timeout")

    const scopes = [...running.config.identityProviders[0]!.scopes, 'email']
    configMap.write(
      configText({ ...stack.input, identityProviders: [{ name: 'a', issuer: idp.issuer, scopes }] }),
    )
    t.match(await running.reload(), { result: 'applied' })
    idp.holdTokenAnswers()
    release()
    const next = await apiCall(jar, `${url}/api/orders`)
    t.equal(next.status, 200, 'the late answer is kept, and serves the next request', { body: next.text })
    t.ok(
      logs.lines.some((line) => /the late answer to a refresh that timed out was kept/.test(line.msg)),
      "kept through the retired client's connection",
    )
    t.equal(idp.stats.refreshReplays, 0, 'no refresh token replayed')
    t.equal(idp.stats.revokedGrants, 0, 'no grant revoked')
  },
)

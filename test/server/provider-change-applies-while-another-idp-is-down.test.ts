/**
 * A reload that changed any provider's entry (provider `a`'s scopes, say)
 * made every provider a new client, each discovered before the reload
 * applied: with provider `b`'s IdP down, the whole reload was refused,
 * though `b`'s entry had not changed. With several providers per instance,
 * one IdP down blocked every provider change, and every route change made
 * with it. Now only a provider with no document to start from (a new
 * issuer) must be discovered first; one whose entry is unchanged keeps its
 * client, and one changed in what discovery does not read starts from the
 * running client's document, each discovered again as a kept one is.
 */
import t, { type Test } from 'tap'
import { makePki } from '../helpers/certificates.js'
import { route, TestClock, type TestProvider } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { configText, LogLines, startReloadable } from '../helpers/reloadable.js'

const FAILED = 'GATEHOUSE_IDP_REDISCOVERY_FAILED'
const REJECTED = 'GATEHOUSE_CONFIG_RELOAD_REJECTED'

/** Providers `a` (the first IdP) and `b` (the second), a route for both. */
async function twoProviders(t: Test, clock = new TestClock()) {
  const log = new LogLines()
  const stack = await startReloadable(t, (upstream) => [route('/api/orders', upstream)], {
    watch: false,
    now: clock.now,
    logStream: log.stream,
    second: {},
    input: (issuer, second) => ({
      logLevel: 'info',
      idpTimeout: 1_000,
      identityProviders: [
        { name: 'a', issuer },
        { name: 'b', issuer: second },
      ],
    }),
    // No retry of a refused reload runs while the test looks.
    reloadRetry: { attempts: 0, delay: 60_000, maxDelay: 60_000 },
  })
  const idpB = stack.second!
  /** The config's text with provider `a` as `a` says. */
  const withA = (a: Partial<TestProvider>) =>
    configText({
      ...stack.input,
      identityProviders: [
        { name: 'a', issuer: stack.idp.issuer, ...a },
        { name: 'b', issuer: idpB.issuer },
      ],
    })
  return { ...stack, idpB, log, withA, clock }
}

t.test(
  "a change of provider a's scopes applies while provider b's IdP is down; b keeps its client and metadata, and its sessions refresh once it is back",
  async (t) => {
    const { running, url, idp, idpB, log, withA, clock, configMap } = await twoProviders(t)
    const atB = await login(url, { params: { idp: 'b' } })
    const atA = await login(url, { params: { idp: 'a' } })
    t.equal(atB.callback.status, 302, 'signed in at b')
    t.equal(atA.callback.status, 302, 'signed in at a')
    const clientB = running.app.gatehouse.providers.get('b')!
    const metadataB = clientB.metadata
    const clientA = running.app.gatehouse.providers.get('a')!

    idpB.setDown('503')
    const scopes = [...running.config.identityProviders[0]!.scopes, 'orders.read']
    configMap.write(withA({ scopes }))
    const result = await running.reload()
    t.equal(result.result, 'applied', "the reload applies with b's IdP down")
    t.notOk(
      log.lines.some((l) => l.code === REJECTED),
      'and nothing is refused',
    )
    t.same(running.config.identityProviders[0]!.scopes, scopes)
    const nowB = running.app.gatehouse.providers.get('b')!
    t.equal(nowB, clientB, "b's entry did not change: it keeps its client")
    t.equal(nowB.metadata, metadataB, 'and the metadata discovered before')
    t.match(
      log.lines.find((l) => l.code === FAILED),
      { level: 40, idp: 'b', issuer: idpB.issuer },
      "b's IdP could not be discovered again: a warning names it",
    )
    const nowA = running.app.gatehouse.providers.get('a')!
    t.not(nowA, clientA, "a's changed entry has a new client")
    t.equal(nowA.discovered, true, "which started from the running client's document")

    const next = await login(url, { params: { idp: 'a' } })
    const asked = new URL(next.responses[0]!.location!).searchParams.get('scope')?.split(' ')
    t.ok(asked?.includes('orders.read'), "the next sign-in at a asks for a's new scopes")
    t.equal(next.callback.status, 302, 'and completes')

    idpB.setDown('ok')
    const refreshesAtB = idpB.stats.refreshGrants
    const refreshesAtA = idp.stats.refreshGrants
    clock.advance(120_000)
    t.equal(
      (await apiCall(atB.jar, `${url}/api/orders`)).status,
      200,
      "b's session, signed in before the reload, is served once its IdP is back",
    )
    t.equal(idpB.stats.refreshGrants, refreshesAtB + 1, 'by a refresh at b')
    t.equal(running.app.gatehouse.providers.get('b')!.metadata, metadataB, "with b's metadata from before")
    t.equal((await apiCall(atA.jar, `${url}/api/orders`)).status, 200, "a's session refreshes too")
    t.equal(idp.stats.refreshGrants, refreshesAtA + 1, 'at a')
  },
)

t.test(
  "a change of a's scopes with a's own IdP down applies too: the new client starts from the document in use",
  async (t) => {
    const { running, idp, idpB, log, withA, configMap } = await twoProviders(t)
    const clientA = running.app.gatehouse.providers.get('a')!
    const metadataA = clientA.metadata
    idp.setDown('503')
    idpB.setDown('503')
    configMap.write(withA({ scopes: [...running.config.identityProviders[0]!.scopes, 'orders.read'] }))
    t.equal((await running.reload()).result, 'applied', 'nothing in the change is read by discovery')
    const nowA = running.app.gatehouse.providers.get('a')!
    t.not(nowA, clientA, 'a has a new client')
    t.equal(nowA.metadata, metadataA, "with the running client's document")
    t.same(
      log.lines
        .filter((l) => l.code === FAILED)
        .map((l) => l.idp)
        .sort(),
      ['a', 'b'],
      'each provider that could not be discovered again is named in a warning',
    )
    idp.setDown('ok')
    const next = await login(running.app.gatehouse.config.server.publicUrl, { params: { idp: 'a' } })
    t.equal(next.callback.status, 302, 'a sign-in at a completes once its IdP is back')
  },
)

t.test('a provider given a new issuer that is down is still refused, naming that issuer alone', async (t) => {
  const { running, idpB, log, withA, configMap } = await twoProviders(t)
  const before = running.config.identityProviders[0]!.issuer
  // An issuer nothing the gateway has discovered, where nothing listens (the discard port).
  const elsewhere = 'http://127.0.0.1:9'
  idpB.setDown('503')
  configMap.write(withA({ issuer: elsewhere }))
  const result = await running.reload()
  t.equal(result.result, 'rejected', 'a new issuer has no document to start from')
  t.match(
    result.result === 'rejected' ? result.problems[0]?.message : '',
    `the identity provider ${elsewhere} could not be discovered within oidc.timeout`,
    'the refusal names the new issuer, and not b, whose IdP is down too',
  )
  t.equal(running.config.identityProviders[0]!.issuer, before, 'the running config is kept')
  t.ok(
    log.lines.some((l) => l.code === REJECTED),
    'and the refusal logged',
  )
})

t.test("a's IdP reached over another connection (tls) is discovered first, as a new issuer is", async (t) => {
  const { running, idp, withA, configMap } = await twoProviders(t)
  const pki = makePki(t)
  idp.setDown('503')
  configMap.write(withA({ tls: { ca: { file: pki.ca.certFile } } }))
  const result = await running.reload()
  t.equal(result.result, 'rejected', 'the document in use came over the old connection')
  t.match(
    result.result === 'rejected' ? result.problems[0]?.message : '',
    `the identity provider ${idp.issuer} could not be discovered within oidc.timeout`,
    'naming its issuer',
  )
  t.equal(running.config.identityProviders[0]!.tls, undefined, 'the running config is kept')
})

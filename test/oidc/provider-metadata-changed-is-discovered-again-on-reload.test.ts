/**
 * Discovery ran once per process: an OpenID Provider that changed its
 * metadata (an endpoint moved, an algorithm added) while the gateway ran
 * was called as it had been until a restart. A config reload (SIGHUP, an
 * edit) now discovers again each provider whose client it keeps, and puts
 * the new document in use once it is fetched and passes every check of
 * the first; a failure, the IdP down or its document refused, keeps the
 * metadata in use, with a warning, and the reload applies all the same.
 */
import t, { type Test } from 'tap'
import { route } from '../helpers/gateway.js'
import { configText, LogLines, startReloadable } from '../helpers/reloadable.js'

const FAILED = 'GATEHOUSE_IDP_REDISCOVERY_FAILED'

async function stack(t: Test) {
  const log = new LogLines()
  const reloadable = await startReloadable(t, (upstream) => [route('/api/orders', upstream)], {
    watch: false,
    logStream: log.stream,
    input: { logLevel: 'info', idpTimeout: 2_000 },
  })
  const { running, url, idp } = reloadable
  /** Where a sign-in is sent now. */
  const signInGoesTo = async () => {
    const answer = await fetch(`${url}/auth/login`, { redirect: 'manual' })
    const location = new URL(answer.headers.get('location')!)
    return `${location.origin}${location.pathname}`
  }
  const first = running.app.gatehouse.oidc.metadata!
  const moved = `${new URL(idp.issuer).origin}/moved/auth`
  return { ...reloadable, log, signInGoesTo, first, moved }
}

t.test('a SIGHUP with the file as it was puts the moved endpoint of the provider in use', async (t) => {
  const { running, idp, log, signInGoesTo, first, moved, configMap, input, upstream } = await stack(t)
  t.equal(
    await signInGoesTo(),
    first.authorization_endpoint,
    'sign-in goes to the endpoint discovered at start',
  )

  idp.advertise({ authorization_endpoint: moved })
  t.equal((await running.reload()).result, 'unchanged', 'the file holds the running config')
  t.equal(await signInGoesTo(), moved, 'sign-in goes where the provider now says')
  t.match(
    log.lines.find((l) => /discovered again on config reload/.test(l.msg)),
    { level: 30, idp: 'default', changed: ['authorization_endpoint'] },
    'the log names what changed',
  )

  // An edit that applies, and keeps the client, discovers it again too.
  const movedAgain = `${moved}/again`
  idp.advertise({ authorization_endpoint: movedAgain })
  configMap.write(
    configText({ ...input, routes: [route('/api/orders', upstream.url), route('/api/more', upstream.url)] }),
  )
  t.equal((await running.reload()).result, 'applied')
  t.equal(await signInGoesTo(), movedAgain, 'moved again')
})

t.test(
  'a provider that cannot be discovered again keeps the metadata in use, and the reload applies',
  async (t) => {
    const { running, idp, log, signInGoesTo, first, moved, configMap, input, upstream } = await stack(t)
    const client = running.app.gatehouse.oidc
    idp.advertise({ authorization_endpoint: moved })
    idp.setDown('503')
    configMap.write(
      configText({
        ...input,
        routes: [route('/api/orders', upstream.url), route('/api/more', upstream.url)],
      }),
    )
    t.equal((await running.reload()).result, 'applied', 'the edit applies while the IdP is down')
    t.equal(running.app.gatehouse.oidc, client, 'on the client it keeps')
    t.equal(client.metadata, first, 'whose metadata is the one in use before')
    t.equal(await signInGoesTo(), first.authorization_endpoint)
    const warned = log.lines.find((l) => l.code === FAILED)
    t.match(warned, { level: 40, idp: 'default', issuer: idp.issuer }, 'a warning names the provider')
    t.match(warned?.msg, /metadata discovered before stays in use/)
    t.equal(running.app.gatehouse.oidc.discovered, true, 'and it is still discovered')
  },
)

t.test('a document the checks refuse is not put in use', async (t) => {
  const { running, idp, log, signInGoesTo, first, moved } = await stack(t)
  // Another issuer in the document: OIDC Discovery 1.0 §4.3, it must be the one configured.
  idp.advertise({ authorization_endpoint: moved, issuer: 'https://elsewhere.example/' })
  t.equal((await running.reload()).result, 'unchanged')
  t.equal(running.app.gatehouse.oidc.metadata, first, 'the metadata in use is kept whole')
  t.equal(await signInGoesTo(), first.authorization_endpoint, 'not one member of the refused document')
  t.match(
    log.lines.find((l) => l.code === FAILED),
    { level: 40, reason: /issuer/ },
    'the warning says why',
  )
})

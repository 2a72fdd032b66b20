/**
 * A reload discovers a provider again and puts a document that passes the
 * discovery checks in use. One that makes sign-in impossible as configured
 * (here DPoP on with ES256, and the provider now advertising PS256 alone)
 * turned every new sign-in into a 503 idp_incompatible and `/readyz` to
 * not ready, while the log said only, at info, that the new metadata was
 * in use. It now says so at warn, with the reason `/readyz` gives, and
 * again at info once a later document makes it compatible again.
 */
import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { jarFetch } from '../helpers/login.js'
import { LogLines, startReloadable } from '../helpers/reloadable.js'

const INCOMPATIBLE = 'GATEHOUSE_ERR_IDP_INCOMPATIBLE'

t.test('a rediscovered document that makes sign-in impossible is warned of', async (t) => {
  const log = new LogLines()
  const { running, idp, url } = await startReloadable(t, (upstream) => [route('/api/orders', upstream)], {
    watch: false,
    logStream: log.stream,
    input: { logLevel: 'info', idpTimeout: 2_000, oidc: { dpop: true } },
  })
  const ready = async () => (await jarFetch(new CookieJar(), `${url}/readyz`)).status
  t.equal(await ready(), 200, 'ready with the document discovered at start')

  idp.advertise({ dpop_signing_alg_values_supported: ['PS256'] })
  t.equal((await running.reload()).result, 'unchanged')
  t.equal(await ready(), 503, '/readyz reports the incompatibility')
  const warned = log.lines.filter((l) => l.code === INCOMPATIBLE)
  t.equal(warned.length, 1, 'one line says so')
  t.match(warned[0], {
    level: 40,
    idp: 'default',
    issuer: idp.issuer,
    reason: /dpop_signing_alg_values_supported is PS256/,
  })
  t.match(warned[0]?.msg, /new sign-ins at it are refused/)

  // The same document again: nothing new to say.
  t.equal((await running.reload()).result, 'unchanged')
  t.equal(log.lines.filter((l) => l.code === INCOMPATIBLE).length, 1, 'not repeated')

  idp.advertise()
  t.equal((await running.reload()).result, 'unchanged')
  t.equal(await ready(), 200)
  t.match(
    log.lines.find((l) => /compatible again/.test(l.msg)),
    { level: 30, idp: 'default' },
    'and once it can sign in again, that is said too',
  )
})

/**
 * The incompatibility is said on `/readyz`, which anyone may read, and
 * quoted the provider's list whole: a document of 2,000 long names (well
 * within the 1 MiB an answer may be) made each probe's body ~400 KiB.
 */
t.test("the provider's list is quoted bounded where /readyz says it", async (t) => {
  const { running, idp, url } = await startReloadable(t, (upstream) => [route('/api/orders', upstream)], {
    watch: false,
    input: { idpTimeout: 2_000, oidc: { dpop: true } },
  })
  const names = Array.from({ length: 2_000 }, (_, i) => `PS${i}${'x'.repeat(200)}`)
  idp.advertise({ dpop_signing_alg_values_supported: ['PS256', '<script>', ...names] })
  t.equal((await running.reload()).result, 'unchanged')
  const answer = await jarFetch(new CookieJar(), `${url}/readyz`)
  t.equal(answer.status, 503)
  t.ok(answer.text.length < 2_048, `${answer.text.length} bytes`)
  t.match(answer.text, /dpop_signing_alg_values_supported is PS256, and 2001 more/)
  t.notMatch(answer.text, /<script>/, 'what is no algorithm name is not repeated')
})

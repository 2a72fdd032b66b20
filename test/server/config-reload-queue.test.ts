import t from 'tap'
import { route, type TestConfigInput } from '../helpers/gateway.js'
import { configText, faultOnceInTheSwap, LogLines, startReloadable } from '../helpers/reloadable.js'

const publicRoute = (upstream: string, path = '/api/public') =>
  route(path, upstream, { token: 'none', csrf: false })

/** The config's text with these public routes to `upstream`. */
const routesOf =
  (input: TestConfigInput, upstream: string) =>
  (...paths: string[]) =>
    configText({ ...input, routes: paths.map((path) => publicRoute(upstream, path)) })

t.test(
  "a SIGHUP that joins a reload the watch queued reads the file again: the operator's retry after an IdP outage applies",
  async (t) => {
    const log = new LogLines()
    const stack = await startReloadable(t, (upstream) => [route('/api/orders', upstream)], {
      logStream: log.stream,
      input: { logLevel: 'info', idpTimeout: 1_000 },
      second: {},
    })
    const { running } = stack
    const idp = stack.second!
    idp.setDown('hang')
    // A new issuer makes a new IdP client, discovered before the swap.
    stack.configMap.write(configText({ ...stack.input, issuer: idp.issuer }))
    const first = running.reload()
    await log.seen(
      "the watch's reload, queued behind the first",
      (l) => l.trigger === 'file' && /another is in progress/.test(l.msg),
    )
    const retry = running.reload()
    t.equal((await first).result, 'rejected', 'the IdP could not be discovered')
    idp.setDown('ok')
    t.equal((await retry).result, 'applied', 'the retry read the file again, and the IdP answered')
    t.equal(running.config.oidc.issuer, idp.issuer)
    t.equal(
      log.lines.find((l) => l.code === 'GATEHOUSE_CONFIG_RELOADED')?.trigger,
      'call',
      'it ran as the call that joined the queue, not as the watch that started it',
    )
    t.notOk(
      log.lines.some((l) => /read by the last reload already/.test(l.msg)),
      'no trigger was dismissed as bytes already read',
    )
  },
)

t.test(
  'a reload that throws leaves the queue working: the one queued behind it runs, and later ones',
  async (t) => {
    const stack = await startReloadable(t, (upstream) => [publicRoute(upstream)], { watch: false })
    const { running, upstream } = stack
    faultOnceInTheSwap(running)
    const routes = routesOf(stack.input, upstream.url)

    stack.configMap.write(routes('/api/public', '/api/two'))
    const first = running.reload()
    const queued = running.reload()
    await t.rejects(first, /injected fault in the swap/)
    t.equal((await queued).result, 'applied', 'the reload queued behind the failed one ran')
    t.equal(running.config.routes.length, 2)

    stack.configMap.write(routes('/api/public', '/api/two', '/api/three'))
    const third = running.reload()
    const fourth = running.reload()
    t.equal((await third).result, 'applied')
    t.equal((await fourth).result, 'unchanged', 'queued afresh, not joined to the old failure')
    t.equal(running.config.routes.length, 3)
  },
)

t.test(
  'a reload the watch or a signal started that throws is logged, never an unhandled rejection',
  async (t) => {
    const log = new LogLines()
    const stack = await startReloadable(t, (upstream) => [publicRoute(upstream)], {
      logStream: log.stream,
      input: { logLevel: 'info' },
    })
    const { running, upstream } = stack
    faultOnceInTheSwap(running)
    const routes = routesOf(stack.input, upstream.url)
    // The watch's reload: nobody awaits it, so a throw would end the process.
    stack.configMap.write(routes('/api/public', '/api/two'))
    const line = await log.seen('the failure, logged', (l) => /config reload failed/.test(l.msg))
    t.match(line, { level: 50, trigger: 'file', err: { message: 'injected fault in the swap' } })
    t.equal((await fetch(`${stack.url}/healthz`)).status, 200, 'the gateway serves on')
    stack.configMap.write(routes('/api/public', '/api/two', '/api/three'))
    await log.seen('the next change applied', (l) => /^config reloaded from/.test(l.msg))
    t.equal(running.config.routes.length, 3)
  },
)

t.test(
  'a storm of SIGHUPs during a reload is served by one reload after it, and logged once, not once a signal',
  async (t) => {
    const log = new LogLines()
    const stack = await startReloadable(t, (upstream) => [route('/api/orders', upstream)], {
      handleSignals: true,
      watch: false,
      logStream: log.stream,
      input: { logLevel: 'info', idpTimeout: 1_000 },
      second: {},
    })
    const { running } = stack
    const idp = stack.second!
    // A new issuer makes a new IdP client, discovered before the swap:
    // while its IdP hangs, the first reload waits out its timeout.
    idp.setDown('hang')
    stack.configMap.write(configText({ ...stack.input, issuer: idp.issuer }))
    const first = running.reload()
    for (let i = 0; i < 100; i++) process.kill(process.pid, 'SIGHUP')
    const queued = await log.seen('the signals queued', (l) => /another is in progress/.test(l.msg))
    t.match(queued, { trigger: 'SIGHUP', queuedAs: 'SIGHUP' })
    t.equal((await first).result, 'rejected', 'the IdP could not be discovered')
    idp.setDown('ok')
    await log.seen('one reload served them all', (l) => l.code === 'GATEHOUSE_CONFIG_RELOADED')
    t.equal(running.config.oidc.issuer, idp.issuer)
    const verdicts = log.lines.filter(
      (l) => l.code === 'GATEHOUSE_CONFIG_RELOADED' || /^config reload rejected:/.test(l.msg),
    )
    t.same(
      verdicts.map((l) => l.trigger),
      ['call', 'SIGHUP'],
      'two reloads in all: the one in progress, and one for every signal',
    )
    t.equal(
      log.lines.filter((l) => /another is in progress/.test(l.msg)).length,
      1,
      'one line for the signals that joined the queue, not one each',
    )
  },
)

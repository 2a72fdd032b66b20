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
    })
    const { running, idp } = stack
    const scopes = [...running.config.oidc.scopes, 'orders.read']
    idp.setDown('hang')
    // New scopes make a new IdP client, discovered before the swap.
    stack.configMap.write(configText({ ...stack.input, oidc: { scopes } }))
    const first = running.reload()
    await log.seen(
      "the watch's reload, queued behind the first",
      (l) => l.trigger === 'file' && /another is in progress/.test(l.msg),
    )
    const retry = running.reload()
    t.equal((await first).result, 'rejected', 'the IdP could not be discovered')
    idp.setDown('ok')
    t.equal((await retry).result, 'applied', 'the retry read the file again, and the IdP answered')
    t.same(running.config.oidc.scopes, scopes)
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

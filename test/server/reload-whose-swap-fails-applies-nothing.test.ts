import t from 'tap'
import { route } from '../helpers/gateway.js'
import { configText, LogLines, refuseOnceInTheSwap, startReloadable } from '../helpers/reloadable.js'

const publicRoute = (upstream: string, path: string) => route(path, upstream, { token: 'none', csrf: false })

t.test(
  'a reload whose swap fails applies nothing: the new app is closed, the running config keeps serving, and the refusal is logged and counted',
  async (t) => {
    const log = new LogLines()
    const stack = await startReloadable(t, (upstream) => [publicRoute(upstream, '/api/public')], {
      watch: false,
      logStream: log.stream,
      // Refused for a reason not in the file, it would be retried; this test reloads again itself.
      reloadRetry: { attempts: 0, delay: 1, maxDelay: 1 },
      input: { logLevel: 'info', maxWebSockets: 5 },
    })
    const { running, upstream, url } = stack
    const lasting = running.app.gatehouse.lasting
    const before = running.config

    // Each app takes IdP parts as it is built and lets them go as it closes
    // (services.ts): one held now, the first app's.
    let held = 1
    const idpFor = lasting.idpFor.bind(lasting)
    lasting.idpFor = (config, observers) => {
      held++
      return idpFor(config, observers)
    }
    const release = lasting.release.bind(lasting)
    lasting.release = (parts) => {
      held--
      return release(parts)
    }
    const rejectedCount = async () =>
      (await lasting.metrics.configReloads.get()).values.find((v) => v.labels.result === 'rejected')?.value ??
      0

    // New scopes make new IdP parts, a client that starts from the document
    // in use; the rest are lasting state the swap applies.
    stack.configMap.write(
      configText({
        ...stack.input,
        routes: [publicRoute(upstream.url, '/api/public'), publicRoute(upstream.url, '/api/two')],
        oidc: { scopes: [...before.oidc.scopes, 'orders.read'] },
        maxWebSockets: 1,
        logLevel: 'warn',
      }),
    )
    refuseOnceInTheSwap(running)
    const rejectedBefore = await rejectedCount()
    let thrown: unknown
    const result = await running.reload().catch((err: unknown) => {
      thrown = err
      return undefined
    })
    t.equal(thrown, undefined, 'nothing is thrown at the caller')
    t.equal(result?.result, 'rejected', 'the reload is refused')
    t.equal(running.config, before, 'the running config is kept')
    t.equal(held, 1, "the new app is closed: the IdP parts it took are let go, and only the first app's held")
    const places = [lasting.sockets.take(undefined), lasting.sockets.take(undefined)]
    t.same(
      places.map((p) => typeof p),
      ['object', 'object'],
      "the running config's WebSocket limit (5) still holds, not the refused one's (1)",
    )
    for (const place of places) if (typeof place === 'object') place.release()
    t.equal(lasting.log.level, 'info', "the running config's log level is kept")
    t.equal(await rejectedCount(), rejectedBefore + 1, 'counted as rejected')
    t.ok(
      log.lines.some(
        (l) =>
          l.code === 'GATEHOUSE_CONFIG_RELOAD_REJECTED' &&
          l.level === 50 &&
          /injected fault in the swap/.test(l.msg),
      ),
      'GATEHOUSE_CONFIG_RELOAD_REJECTED names what failed',
    )
    t.notOk(
      log.lines.some((l) => /config reload failed while it swapped/.test(l.msg)),
      'nothing is left half-applied to warn of',
    )
    t.equal((await fetch(`${url}/api/public/x`)).status, 200, 'the running config serves its route')
    t.equal((await fetch(`${url}/api/two/x`)).status, 404, "and not the refused config's")
    t.equal((await fetch(`${url}/healthz`)).status, 200, 'the gateway is healthy')

    // The same file, once the fault is gone, applies whole.
    t.equal((await running.reload()).result, 'applied')
    t.equal(running.config.routes.length, 2)
    t.equal(lasting.log.level, 'warn')
    const first = lasting.sockets.take(undefined)
    t.equal(lasting.sockets.take(undefined), 'instance_limit', 'the new WebSocket limit (1) holds')
    if (typeof first === 'object') first.release()
    t.equal((await fetch(`${url}/api/two/x`)).status, 200)
  },
)

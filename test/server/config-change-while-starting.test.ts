import t from 'tap'
import { route } from '../helpers/gateway.js'
import { configText, LogLines, startReloadable } from '../helpers/reloadable.js'

const publicRoute = (upstream: string, path = '/api/public') =>
  route(path, upstream, { token: 'none', csrf: false })

t.test(
  'a ConfigMap update that lands while the gateway starts is applied once the file is watched',
  async (t) => {
    const log = new LogLines()
    const stack = await startReloadable(t, (upstream) => [publicRoute(upstream)], {
      logStream: log.stream,
      input: { logLevel: 'info' },
      // The config is loaded; the app is yet to be built and to listen.
      beforeStart: (configMap, input) => {
        const upstream = input.routes[0]!.upstream
        configMap.write(
          configText({ ...input, routes: [publicRoute(upstream), publicRoute(upstream, '/api/new')] }),
        )
      },
    })
    t.match(
      log.lines.find((l) => /^gatehouse listening/.test(l.msg))?.msg,
      /1 routes/,
      'it started on the config it loaded',
    )
    const applied = await log.seen('the reload of the update', (l) => l.code === 'GATEHOUSE_CONFIG_RELOADED')
    t.equal(applied.trigger, 'file', 'the watch found the file changed as it began')
    t.equal(stack.running.config.routes.length, 2)
    t.equal((await fetch(`${stack.url}/api/new/x`)).status, 200, 'the route the update added is served')
  },
)

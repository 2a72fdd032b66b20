import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { route } from '../helpers/gateway.js'
import { configText, startReloadable } from '../helpers/reloadable.js'
import { closed, nextMessage, openSocket, until, wsUpstream } from '../helpers/websocket.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** Heap in use once everything unreachable is collected (twice: weak maps and finalizers free more). */
function settledHeap(): number {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

/**
 * Each reload builds an app, and every other one new IdP parts discovered
 * at the dev IdP: 200 of them took 97 s under tap beside other helpers'
 * files, 117 s with the process's start, at tap's 120 s timeout. 100 keep
 * the file near half that, and the 80 past the warm-up, each held on
 * purpose, still grow the heap near twice the bound below.
 */
const RELOADS = 100
/**
 * How much the heap may grow over the reloads after the first 20, which
 * warm up what is made once (compiled code, pools, the dev IdP's stores,
 * which run in this process). Measured on Node 24: about 2 MiB. A retired
 * app kept alive costs 0.4 to 0.5 MiB (holding each on purpose grew the
 * heap 84 MiB over 180 reloads, and 30 MiB over 80), so the bound trips
 * once some 35 are kept.
 */
const GROWTH_BOUND = 16 * 1024 * 1024 // 16 MiB

t.test(
  `${RELOADS} reloads keep no retired config alive: each app is collected once its last request and WebSocket end`,
  async (t) => {
    const ws = await wsUpstream(t)
    const routes = (upstream: string, n: number) => [
      route('/api/public', upstream, { token: 'none', csrf: false, timeout: 5_000 + n }),
      route('/ws', ws.url, { token: 'none', csrf: false, websocket: true }),
      // Every other config asks the login for a resource: new IdP parts,
      // a client discovered before the swap and closed with the last app that holds it.
      ...(n % 2 === 1 ? [route('/api/reports', upstream, { resource: 'https://reports.example' })] : []),
    ]
    const stack = await startReloadable(t, (upstream) => routes(upstream, 0), { watch: false })
    const { running, upstream, url } = stack
    const port = running.config.server.port

    const apps: WeakRef<object>[] = []
    let socket: Awaited<ReturnType<typeof openSocket>> | undefined
    let before = 0
    const results = { applied: 0, rejected: 0, unchanged: 0 }
    for (let n = 1; n <= RELOADS; n++) {
      // Among the reloads that apply, each kind of refusal: a problem in the
      // file, a file over 8 KiB (checked on a thread of its own, which takes
      // a second or two under tap), and a setting only a restart can change
      // beside allowed ones.
      let file = configText({ ...stack.input, routes: routes(upstream.url, n) })
      if (n % 10 === 3) file += 'bogus: 1\n'
      if (n % 50 === 6) file += `# ${'x'.repeat(9_000)}\nbogus: 1\n`
      if (n % 10 === 9) file = file.replace(`port: ${port}`, `port: ${port + 1}`)
      stack.configMap.write(file)
      results[(await running.reload()).result]++
      apps.push(new WeakRef(running.app))
      // A WebSocket opened on one config and kept across a reload holds
      // that config's app; once it closes, so does the app.
      if (socket) {
        const closing = closed(socket)
        socket.close(1000)
        await closing
        socket = undefined
      }
      if (n % 20 === 0) {
        socket = await openSocket(`${url.replace(/^http/, 'ws')}/ws`, { origin: url })
        socket.send(`m${n}`)
        t.equal(String(await nextMessage(socket)), `m${n}`, `a socket opened on config ${n} relays`)
      }
      const answered = await fetch(`${url}/api/public/x`)
      await answered.arrayBuffer()
      if (answered.status !== 200) t.fail(`after reload ${n} the public route answered ${answered.status}`)
      if (n === 20) before = settledHeap()
    }
    t.same(results, { applied: 78, rejected: 22, unchanged: 0 }, 'each reload applied or was refused')

    const current = running.app
    const retired = () => {
      gc()
      return new Set(apps.map((app) => app.deref()).filter((app) => app !== undefined && app !== current))
    }
    // The IdP parts a reload keeps (its IdP settings unchanged) report to
    // the observers of the app that made them (lasting.ts), so that one app
    // lives as long as they do: one, however many reloads share them.
    t.ok(
      await until(() => retired().size <= 1),
      'every retired app is collected but the one the IdP parts report to',
    )
    const growth = settledHeap() - before
    t.ok(
      growth < GROWTH_BOUND,
      `the heap grew ${(growth / 1024 / 1024).toFixed(1)} MiB over ${RELOADS - 20} reloads (bound ${GROWTH_BOUND / 1024 / 1024} MiB)`,
    )
    socket?.close(1000)
  },
)

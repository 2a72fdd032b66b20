import t from 'tap'
import { readConfigFile } from '../../src/config/read.js'
import { route } from '../helpers/gateway.js'
import { configText, LogLines, startReloadable } from '../helpers/reloadable.js'
import { within } from '../helpers/within.js'

/**
 * The watch reads the config file as it starts, to compare it with the
 * bytes the gateway loaded. `start` waited for that read before its
 * "gatehouse listening" line and before it returned, so on a mount that
 * stalled between the load and the watch (an NFS hard mount, a FUSE server
 * that stopped answering) the line never came, and whatever waited for it
 * (an operator, a test, a supervisor reading the log) waited for ever,
 * though the gateway had listened and served the config it had loaded and
 * validated. A stalled read is a fault no real file here shows: it is
 * injected at the watch's read.
 */

const publicRoute = (upstream: string, path = '/api/public') =>
  route(path, upstream, { token: 'none', csrf: false })

t.test(
  "the gateway starts and serves while the watch's first read is stalled, warns, and applies an edit once the read returns",
  async (t) => {
    const log = new LogLines()
    let reads = 0
    let release: (() => void) | undefined
    const stalled = new Promise<void>((resolve) => {
      release = resolve
    })
    // Released at the end whatever happens, so nothing outlives the test.
    t.teardown(() => release?.())
    const stack = await within(
      startReloadable(t, (upstream) => [publicRoute(upstream)], {
        logStream: log.stream,
        input: { logLevel: 'info' },
        // The bound a read of the file gets, the watch's first one's too.
        reloadRead: { timeout: 300, read: readConfigFile },
        watch: {
          debounce: 50,
          read: async (file) => {
            // The mount answers late, then with the file as it is then.
            if (++reads === 1) await stalled
            return readConfigFile(file)
          },
        },
      }),
      "start with the watch's first read stalled",
      10_000,
    )
    t.match(
      (await log.seen('the listening line', (l) => /^gatehouse listening/.test(l.msg))).msg,
      /1 routes/,
      'the listening line is written, on the config loaded at start',
    )
    t.equal((await fetch(`${stack.url}/api/public/x`)).status, 200, 'and the gateway serves it')
    const warned = await log.seen('the stalled watch', (l) => l.code === 'GATEHOUSE_CONFIG_WATCH_STALLED')
    t.match(warned, { level: 40, file: stack.configMap.file, msg: /SIGHUP/ })

    // An edit while the read is stalled is one more read once it returns.
    const { upstream } = stack
    stack.configMap.write(
      configText({
        ...stack.input,
        routes: [publicRoute(upstream.url), publicRoute(upstream.url, '/api/new')],
      }),
    )
    t.equal(reads, 1, 'no second read beside the stalled one')
    release?.()
    const applied = await log.seen('the edit applied', (l) => l.code === 'GATEHOUSE_CONFIG_RELOADED')
    t.equal(applied.trigger, 'file', 'the watch caught up with the file once its read returned')
    t.equal(stack.running.config.routes.length, 2)
    t.ok(
      log.lines.find((l) => /^the config file's first read for the watch returned/.test(l.msg)),
      'the log says the watch is back',
    )
  },
)

import t from 'tap'
import { HeldHangups } from '../../src/server/hangups.js'
import { route } from '../helpers/gateway.js'
import { configText, LogLines, startReloadable } from '../helpers/reloadable.js'

t.test(
  'the startup line is logged only once SIGTERM drains: a signal that follows it is never the default kill',
  async (t) => {
    // An orchestrator, or a script, waits for the startup line and may stop
    // the gateway at once. Were the handlers added after the line (after the
    // config watch is ready), that SIGTERM would kill the process mid-request
    // without the drain.
    const signalHandlers = { SIGTERM: -1, SIGINT: -1, SIGHUP: -1 }
    const before = {
      SIGTERM: process.listenerCount('SIGTERM'),
      SIGINT: process.listenerCount('SIGINT'),
      SIGHUP: process.listenerCount('SIGHUP'),
    }
    await startReloadable(t, (upstream) => [route('/api/public', upstream, { token: 'none', csrf: false })], {
      handleSignals: true,
      input: { logLevel: 'info' },
      logStream: {
        write: (line: string) => {
          if (!line.includes('gatehouse listening')) return
          signalHandlers.SIGTERM = process.listenerCount('SIGTERM')
          signalHandlers.SIGINT = process.listenerCount('SIGINT')
          signalHandlers.SIGHUP = process.listenerCount('SIGHUP')
        },
      },
    })
    t.same(
      signalHandlers,
      { SIGTERM: before.SIGTERM + 1, SIGINT: before.SIGINT + 1, SIGHUP: before.SIGHUP + 1 },
      'each handler was in place when the startup line was written',
    )
  },
)

t.test('a SIGHUP held while the gateway started is answered by one reload once it listens', async (t) => {
  const before = process.listenerCount('SIGHUP')
  // As the CLI holds them from before it reads the config.
  const held = new HeldHangups()
  process.emit('SIGHUP', 'SIGHUP')
  const log = new LogLines()
  const publicRoute = (upstream: string, path: string) =>
    route(path, upstream, { token: 'none', csrf: false })
  const stack = await startReloadable(t, (upstream) => [publicRoute(upstream, '/api/public')], {
    handleSignals: true,
    hangups: held,
    // Only the SIGHUP can read what this writes.
    watch: false,
    logStream: log.stream,
    input: { logLevel: 'info' },
    beforeStart: (configMap, input) => {
      const upstream = input.routes[0]!.upstream
      configMap.write(
        configText({
          ...input,
          routes: [publicRoute(upstream, '/api/public'), publicRoute(upstream, '/api/new')],
        }),
      )
    },
  })
  t.ok(
    log.lines.some((l) => /a SIGHUP came while the gateway was starting/.test(l.msg)),
    'the held SIGHUP is named',
  )
  const applied = await log.seen('the reload', (l) => l.code === 'GATEHOUSE_CONFIG_RELOADED')
  t.equal(applied.trigger, 'SIGHUP')
  t.equal(stack.running.config.routes.length, 2)
  t.equal(process.listenerCount('SIGHUP'), before + 1, "the hold gave way to the gateway's own handler")
})

import t from 'tap'
import { route } from '../helpers/gateway.js'
import { startReloadable } from '../helpers/reloadable.js'

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

import t from 'tap'
import { readConfigFile } from '../../src/config/read.js'
import type { ReloadResult } from '../../src/server/reload.js'
import { route } from '../helpers/gateway.js'
import { configText, LogLines, startReloadable } from '../helpers/reloadable.js'
import { within } from '../helpers/within.js'

/**
 * A reload reads the file off the event loop, so a file on a stalled
 * network mount never held a request; but nothing bounded the read. The
 * reload waited for it forever, and every reload after it, a SIGHUP's
 * or the watch's, queued behind it, so the file was never read again,
 * and the shutdown waited for it until the drain timeout killed the
 * process. A stalled read is a fault no real file here can be made to
 * show: it is injected at the reloader's read.
 */

t.test(
  'a read of the file that never returns is refused after its bound, and reads no more until it does',
  async (t) => {
    const log = new LogLines()
    const reads: string[] = []
    let stall: ((bytes: Buffer) => void) | undefined
    const stack = await startReloadable(
      t,
      (upstream) => [route('/api/public', upstream, { token: 'none', csrf: false })],
      {
        watch: false,
        logStream: log.stream,
        input: { logLevel: 'info' },
        reloadRead: {
          timeout: 500,
          read: (file) => {
            reads.push(file)
            if (reads.length === 1 || reads.length === 4)
              return new Promise<Buffer>((resolve) => {
                stall = resolve
              })
            return readConfigFile(file)
          },
        },
      },
    )
    const { running, configMap, upstream } = stack
    const next = configText({
      ...stack.input,
      routes: [
        route('/api/public', upstream.url, { token: 'none', csrf: false }),
        route('/api/new', upstream.url),
      ],
    })
    configMap.write(next)

    const stalled = await within(running.reload(), 'the reload of a stalled read')
    t.match(stalled, {
      result: 'rejected',
      problems: [{ path: '', message: /^reading the config file took longer than 0\.5 s/ }],
    })
    t.match(
      (await log.seen('the refusal', (l) => /^config reload rejected:/.test(l.msg))).msg,
      /has 1 problem; the running config is kept/,
    )

    const again = await within(running.reload(), 'a reload while the read is still stalled')
    t.match(again, { result: 'rejected', problems: [{ message: /has not returned yet/ }] })
    t.equal(
      reads.length,
      1,
      'no second read is started beside the stalled one: each would hold a thread of the pool',
    )

    stall?.(Buffer.from(''))
    await log.seen('the reload once the mount answers', (l) => l.code === 'GATEHOUSE_CONFIG_RELOADED')
    t.equal(reads.length, 2)
    t.equal(running.config.routes.length, 2, 'the file is read again, and applies')

    // The shutdown does not wait for a read that never returns.
    configMap.write(configText(stack.input))
    t.equal((await within(running.reload(), 'a read that returns')).result, 'applied')
    const last: Promise<ReloadResult> = running.reload()
    await new Promise((resolve) => setImmediate(resolve))
    t.equal(reads.length, 4, 'stalled again')
    await within(running.close(), 'the shutdown')
    t.match(await last, { result: 'rejected', problems: [{ message: /shutting down/ }] })
  },
)

t.test(
  'an edit refused while a read was stalled is applied once that read returns: the watch reports those bytes once',
  async (t) => {
    const log = new LogLines()
    let reads = 0
    let stall: ((bytes: Buffer) => void) | undefined
    const stack = await startReloadable(
      t,
      (upstream) => [route('/api/public', upstream, { token: 'none', csrf: false })],
      {
        logStream: log.stream,
        input: { logLevel: 'info' },
        reloadRead: {
          timeout: 500,
          read: (file) => {
            if (++reads === 1)
              return new Promise<Buffer>((resolve) => {
                stall = resolve
              })
            return readConfigFile(file)
          },
        },
      },
    )
    const { running, configMap, upstream } = stack
    configMap.write(
      configText({
        ...stack.input,
        routes: [
          route('/api/public', upstream.url, { token: 'none', csrf: false }),
          route('/api/new', upstream.url),
        ],
      }),
    )
    await log.seen(
      "the watch's reload, refused for the stalled read",
      (l) => l.trigger === 'file' && /reading the config file took longer than 0\.5 s/.test(l.msg),
    )
    t.equal(running.config.routes.length, 1, 'the running config is kept meanwhile')

    // The mount answers, late; the file has not changed since the watch saw it.
    stall?.(Buffer.from(''))
    const applied = await log.seen('the edit applied', (l) => l.code === 'GATEHOUSE_CONFIG_RELOADED')
    t.equal(applied.trigger, 'retry', 'read again by the reloader itself, not by a signal or a change')
    t.equal(running.config.routes.length, 2, 'the edit runs')
    t.equal(reads, 2, 'one read more, once the stalled one returned')
  },
)

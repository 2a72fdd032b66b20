import t, { type Test } from 'tap'
import type { ReloadRetry } from '../../src/server/reload-retry.js'
import type { RunningGateway } from '../../src/server/start.js'
import { route } from '../helpers/gateway.js'
import {
  configText,
  faultOnceInTheSwap,
  type LogLine,
  LogLines,
  startReloadable,
} from '../helpers/reloadable.js'

const RELOADED = 'GATEHOUSE_CONFIG_RELOADED'
const REJECTED = 'GATEHOUSE_CONFIG_RELOAD_REJECTED'
const RETRY = 'GATEHOUSE_CONFIG_RELOAD_RETRY'

/** The summary line of a rejected reload (each problem has a line of its own before it). */
const summary = (l: LogLine) => l.code === REJECTED && typeof l.problems === 'number'

/** `gatehouse_config_reloads_total{result="rejected"}`. */
async function rejections(running: RunningGateway): Promise<number> {
  const text = await running.app.gatehouse.metrics.registry.metrics()
  return Number(/^gatehouse_config_reloads_total\{result="rejected"\} (\d+)$/m.exec(text)?.[1])
}

/**
 * A gateway on a real IdP whose reloads are retried as `retry` says,
 * logging to `log`, and a second IdP (`stack.second`) to move the config
 * to: a new issuer, discovered before the reload applies, so one that is
 * down refuses it. (A reload that keeps the issuer starts from the
 * document in use and applies whether the IdP answers or not.)
 */
function startRetrying(t: Test, log: LogLines, retry: ReloadRetry) {
  return startReloadable(t, (upstream) => [route('/api/orders', upstream)], {
    logStream: log.stream,
    input: { logLevel: 'info', idpTimeout: 1_000 },
    reloadRetry: retry,
    second: {},
  })
}

t.test(
  'a reload refused because the IdP could not be discovered is retried, and applies once the IdP is back',
  async (t) => {
    const log = new LogLines()
    const stack = await startRetrying(t, log, { attempts: 3, delay: 100, maxDelay: 400 })
    const { running } = stack
    const idp = stack.second!
    idp.setDown('503')
    // A new issuer makes a new IdP client, discovered before the swap.
    stack.configMap.write(configText({ ...stack.input, issuer: idp.issuer }))
    const refused = await log.seen('the refusal', summary)
    t.equal(refused.trigger, 'file')
    t.match(
      log.lines.find((l) => l.code === RETRY),
      { level: 40, retry: 1, of: 3, retryInMs: 100, msg: /retry 1 of 3 in 100 ms/ },
      'the retry is announced with the refusal',
    )
    idp.setDown('ok')
    const applied = await log.seen('the retry applied', (l) => l.code === RELOADED)
    t.equal(applied.trigger, 'retry', 'applied by the retry: nothing else read the file again')
    t.equal(running.config.oidc.issuer, idp.issuer)
    t.ok(
      log.lines.some((l) => l.msg === 'config reload: retry 1 of 3'),
      'the retry says so as it starts',
    )
  },
)

t.test(
  "an edit both signalled and seen by the watch, refused because the IdP was down: the watch's reload reads it again",
  async (t) => {
    const log = new LogLines()
    // No retries: only the watch's own reload can apply the edit.
    const stack = await startRetrying(t, log, { attempts: 0, delay: 100, maxDelay: 100 })
    const { running } = stack
    const idp = stack.second!
    idp.setDown('hang')
    stack.configMap.write(configText({ ...stack.input, issuer: idp.issuer }))
    const signalled = running.reload()
    await log.seen(
      "the watch's reload, queued behind the signal's",
      (l) => l.trigger === 'file' && /another is in progress/.test(l.msg),
    )
    t.equal((await signalled).result, 'rejected')
    idp.setDown('ok')
    const verdict = await log.seen(
      "the watch's verdict",
      (l) =>
        l.trigger === 'file' &&
        (l.code === RELOADED || summary(l) || /read by the last reload already/.test(l.msg)),
    )
    t.equal(verdict.code, RELOADED, 'the bytes the IdP outage refused were not taken as read')
    t.equal(running.config.oidc.issuer, idp.issuer)
  },
)

t.test(
  'the retries are bounded: each waits twice as long up to the cap, then they give up and say so',
  async (t) => {
    const log = new LogLines()
    const stack = await startRetrying(t, log, { attempts: 3, delay: 50, maxDelay: 150 })
    const { running } = stack
    const idp = stack.second!
    idp.setDown('503')
    stack.configMap.write(configText({ ...stack.input, issuer: idp.issuer }))
    const gaveUp = await log.seen('giving up', (l) => l.code === RETRY && l.gaveUp === true)
    t.match(
      gaveUp.msg,
      /gave up after 3 retries; the running config is kept. Once the cause is fixed, send SIGHUP/,
    )
    t.same(
      log.lines.filter((l) => l.code === RETRY && l.retry !== undefined).map((l) => [l.retry, l.retryInMs]),
      [
        [1, 50],
        [2, 100],
        [3, 150],
      ],
    )
    t.same(
      log.lines.filter(summary).map((l) => l.trigger),
      ['file', 'retry', 'retry', 'retry'],
      'each retry is a reload of its own, logged as one',
    )
    t.equal(await rejections(running), 4, 'and counted as one')
  },
)

t.test('a newer reload drops the pending retry, and reads the file as it is now', async (t) => {
  const log = new LogLines()
  const stack = await startRetrying(t, log, { attempts: 3, delay: 60_000, maxDelay: 60_000 })
  const { running, idp, upstream } = stack
  const moved = stack.second!
  idp.setDown('503')
  moved.setDown('503')
  stack.configMap.write(configText({ ...stack.input, issuer: moved.issuer }))
  await log.seen('the refusal', summary)
  t.ok(
    log.lines.some((l) => l.code === RETRY && l.retry === 1),
    'a retry is waiting',
  )

  // A change the running IdP client serves: it applies with the IdP still down.
  stack.configMap.write(
    configText({
      ...stack.input,
      routes: [route('/api/orders', upstream.url), route('/api/new', upstream.url)],
    }),
  )
  const applied = await log.seen('the newer reload', (l) => l.code === RELOADED)
  t.equal(applied.trigger, 'file')
  t.ok(
    log.lines.some((l) => /the pending retry is dropped; a newer reload reads the file now/.test(l.msg)),
    'the retry is dropped, and says so',
  )
  t.equal(running.config.routes.length, 2)
  t.equal(running.config.oidc.issuer, idp.issuer, 'the refused edit is gone with it')
})

t.test('a retry whose swap throws is logged, never an unhandled rejection', async (t) => {
  const log = new LogLines()
  const stack = await startRetrying(t, log, { attempts: 2, delay: 100, maxDelay: 100 })
  const { running } = stack
  const idp = stack.second!
  idp.setDown('503')
  stack.configMap.write(configText({ ...stack.input, issuer: idp.issuer }))
  await log.seen('the refusal', summary)
  faultOnceInTheSwap(running)
  idp.setDown('ok')
  const line = await log.seen('the failure, logged', (l) => /config reload failed/.test(l.msg))
  t.match(line, { level: 50, trigger: 'retry', err: { message: 'injected fault in the swap' } })
  t.equal((await fetch(`${stack.url}/healthz`)).status, 200, 'the gateway serves on')
})

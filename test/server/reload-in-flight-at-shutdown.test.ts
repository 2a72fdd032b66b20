import { once } from 'node:events'
import type { Worker } from 'node:worker_threads'
import t from 'tap'
import type { Lasting } from '../../src/server/lasting.js'
import { route } from '../helpers/gateway.js'
import { configText, LogLines, startReloadable } from '../helpers/reloadable.js'

/**
 * How many IdP parts the apps built on `lasting` hold: each app takes its
 * parts as it is built and lets go of them when it is closed (services.ts).
 */
function holdings(lasting: Lasting): () => number {
  let held = 1 // the first app's
  const idpFor = lasting.idpFor.bind(lasting)
  const release = lasting.release.bind(lasting)
  lasting.idpFor = (...args) => {
    held++
    return idpFor(...args)
  }
  lasting.release = (parts) => {
    held--
    return release(parts)
  }
  return () => held
}

t.test(
  'a reload in flight when shutdown begins applies nothing, and the app it built is closed with the rest',
  async (t) => {
    const log = new LogLines()
    const stack = await startReloadable(t, (upstream) => [route('/api/orders', upstream)], {
      logStream: log.stream,
      input: { logLevel: 'info' },
    })
    const { running } = stack
    const first = running.app
    const held = holdings(first.gatehouse.lasting)
    const scopes = running.config.oidc.scopes
    // New scopes make new IdP parts and a new client, which the app built holds.
    stack.configMap.write(configText({ ...stack.input, oidc: { scopes: [...scopes, 'orders.read'] } }))
    // Both before the first awaits anything: the reload reads the file
    // after the shutdown has begun, and one more waits its turn behind it.
    const reloading = running.reload()
    const queued = running.reload()
    await running.close()

    for (const [name, reload] of [
      ['in flight', reloading],
      ['queued', queued],
    ] as const) {
      const result = await reload
      t.equal(result.result, 'rejected', `the reload ${name} is not applied`)
      t.match(
        result.result === 'rejected' ? result.problems : [],
        [{ message: /shutting down/ }],
        'and says why',
      )
    }
    t.equal(held(), 0, 'every app built was closed by the time close() resolved, its IdP client with it')
    t.equal(running.app, first, 'no app was swapped in after the listener closed')
    t.same(running.config.oidc.scopes, scopes, 'the config it ran on is the one it reports')
    t.notOk(
      log.lines.some((l) => l.code === 'GATEHOUSE_CONFIG_RELOADED'),
      'no config reloaded while shutting down',
    )
    t.notOk(
      log.lines.some((l) => l.code === 'GATEHOUSE_CONFIG_RELOAD_REJECTED'),
      'nor refused as a bad file: the file was not to blame',
    )
  },
)

t.test(
  'a reload waiting to discover an IdP that is down does not hold the shutdown for the discovery timeout',
  async (t) => {
    const log = new LogLines()
    const stack = await startReloadable(t, (upstream) => [route('/api/orders', upstream)], {
      logStream: log.stream,
      // Far past any drain this test could see: a shutdown that waits for it fails the bound below.
      input: { logLevel: 'info', idpTimeout: 60_000 },
      second: {},
    })
    const { running } = stack
    const idp = stack.second!
    const held = holdings(running.app.gatehouse.lasting)
    idp.setDown('503')
    const issuer = running.config.oidc.issuer
    // A new issuer makes a new IdP client, discovered before the swap.
    stack.configMap.write(configText({ ...stack.input, issuer: idp.issuer }))
    const reloading = running.reload()
    await log.seen('the new client failing to discover the IdP', (l) =>
      /discovery failed; retrying/.test(l.msg),
    )

    const began = performance.now()
    await running.close()
    const took = performance.now() - began
    t.ok(took < 10_000, `close() took ${Math.round(took)} ms, not the 60 s discovery timeout`)
    t.match(await reloading, { result: 'rejected', problems: [{ message: /shutting down/ }] })
    t.equal(held(), 0, 'the app built for it was closed')
    t.equal(running.config.oidc.issuer, issuer)
  },
)

t.test(
  'a reload whose large file is being checked on its own thread does not hold the shutdown for the check',
  async (t) => {
    const log = new LogLines()
    const stack = await startReloadable(t, (upstream) => [route('/api/orders', upstream)], {
      logStream: log.stream,
      input: { logLevel: 'info' },
      watch: false,
    })
    const { running } = stack
    const text = configText({ ...stack.input, routes: [route('/api/new', stack.upstream.url)] })
    // Within every bound (yaml-scan.ts): 1 MB of blank lines takes the
    // check seconds, past any drain this test could see.
    stack.configMap.write(text + '\n'.repeat(1_000_000 - text.length))
    const thread = once(process, 'worker') as Promise<[Worker]>
    const reloading = running.reload()
    const [checker] = await thread
    let answered = false
    checker.once('message', () => {
      answered = true
    })
    const ended = once(checker, 'exit')
    await once(checker, 'online')

    const began = performance.now()
    await running.close()
    t.comment(`close() took ${Math.round(performance.now() - began)} ms`)
    await ended
    t.notOk(answered, 'the check was ended, not waited out: its thread never answered')
    t.match(await reloading, { result: 'rejected', problems: [{ message: /shutting down/ }] })
    t.equal(running.config.routes[0]?.path, '/api/orders', 'nothing was applied')
    t.notOk(
      log.lines.some((l) => l.code === 'GATEHOUSE_CONFIG_RELOAD_REJECTED'),
      'nor refused as a bad file: the file was not to blame',
    )
  },
)

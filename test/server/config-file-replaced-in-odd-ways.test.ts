import { mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { route } from '../helpers/gateway.js'
import { configText, LogLines, type Reloadable, startReloadable } from '../helpers/reloadable.js'

/**
 * How a config file reaches a running gateway other than by a clean
 * ConfigMap update: a hundred updates at once, a write in place seen half
 * done, an editor's rename-and-replace, and a ConfigMap whose `..data`
 * names a directory that is gone. Each is refused or applied whole; the
 * running config serves until a whole valid file is read.
 */

const publicRoute = (upstream: string, timeout = 5_000) =>
  route('/api/public', upstream, { token: 'none', csrf: false, timeout })
const withTimeout = (stack: Reloadable, timeout: number) =>
  configText({ ...stack.input, routes: [publicRoute(stack.upstream.url, timeout)] })
const applied = (log: LogLines) => log.lines.filter((l) => l.code === 'GATEHOUSE_CONFIG_RELOADED')

t.test('a hundred ConfigMap updates at once make one reload, of the last', async (t) => {
  const log = new LogLines()
  const stack = await startReloadable(t, (upstream) => [publicRoute(upstream)], {
    logStream: log.stream,
    input: { logLevel: 'info' },
    // The default quiet period, as deployed.
    watch: { debounce: 200 },
  })
  // One after the other, with nothing else running in between: the watch
  // hears them all once this loop ends.
  for (let n = 1; n <= 100; n++) stack.configMap.write(withTimeout(stack, 1_000 + n))
  await log.seen('the reload', (l) => l.code === 'GATEHOUSE_CONFIG_RELOADED')
  t.equal(stack.running.config.routes[0]?.timeout, 1_100, 'the last update is the one applied')
  t.equal((await stack.running.reload()).result, 'unchanged', 'the file holds what runs')
  t.equal(applied(log).length, 1, 'one reload for the hundred')
  t.equal(
    log.lines.filter((l) => l.trigger === 'file').length,
    1,
    'the watch asked for one reload: the quiet period took them all',
  )
})

t.test(
  'a file written in place and read half done is refused with its line; the rest, once written, applies',
  async (t) => {
    const log = new LogLines()
    const stack = await startReloadable(t, (upstream) => [publicRoute(upstream)], {
      logStream: log.stream,
      input: { logLevel: 'info' },
    })
    const { running, configMap } = stack
    // A plain file in the watched directory instead of the ConfigMap's symlink.
    rmSync(configMap.file)
    writeFileSync(configMap.file, withTimeout(stack, 5_000))
    const whole = withTimeout(stack, 7_000)
    // Cut inside the route's list: `routes:` left with a half-written item.
    const half = whole.slice(0, whole.indexOf('upstream:') + 'upst'.length)
    writeFileSync(configMap.file, half)
    const refused = await log.seen('the half refused', (l) => /^config reload rejected:/.test(l.msg))
    t.equal(refused.trigger, 'file')
    const problems = log.lines.filter(
      (l) => l.code === 'GATEHOUSE_CONFIG_RELOAD_REJECTED' && l.msg !== refused.msg,
    )
    t.ok(
      problems.length > 0 && problems.every((l) => typeof l.line === 'number'),
      'each problem with its line',
    )
    t.equal(running.config.routes[0]?.timeout, 5_000, 'the running config serves on')

    writeFileSync(configMap.file, whole)
    await log.seen('the whole applied', (l) => l.code === 'GATEHOUSE_CONFIG_RELOADED')
    t.equal(running.config.routes[0]?.timeout, 7_000)

    // An editor's save (vim's default): the file renamed to a backup, a new one written in its place.
    renameSync(configMap.file, `${configMap.file}~`)
    writeFileSync(configMap.file, withTimeout(stack, 9_000))
    await log.seen('the save applied', (l) => applied(log).length === 2 && l === applied(log)[1])
    t.equal(running.config.routes[0]?.timeout, 9_000)
    t.equal(
      log.lines.filter((l) => /file not found/.test(l.msg)).length,
      0,
      'the moment the file was gone is not read as its deletion',
    )
  },
)

t.test(
  'a ConfigMap whose ..data names a directory that is gone is refused, the config kept; the next update applies',
  async (t) => {
    const log = new LogLines()
    const stack = await startReloadable(t, (upstream) => [publicRoute(upstream)], {
      logStream: log.stream,
      input: { logLevel: 'info' },
    })
    const { running, configMap } = stack
    const before = running.config
    const target = readlinkSync(join(configMap.dir, '..data'))
    t.ok(readdirSync(configMap.dir).includes(target))
    rmSync(join(configMap.dir, target), { recursive: true })
    const line = await log.seen(
      'the dangling link refused',
      (l) => l.code === 'GATEHOUSE_CONFIG_RELOAD_REJECTED' && /file not found/.test(l.msg),
    )
    t.equal(line.msg, `${configMap.file} cannot read the config file: file not found`)
    t.equal(running.config, before, 'the running config is kept')
    t.equal((await fetch(`${stack.url}/healthz`)).status, 200)

    // The kubelet's next sync writes a new directory and swaps ..data to it;
    // the helper removes the old one after, so it is made again, empty.
    mkdirSync(join(configMap.dir, target))
    configMap.write(withTimeout(stack, 6_000))
    await log.seen('the next update applied', (l) => l.code === 'GATEHOUSE_CONFIG_RELOADED')
    t.equal(running.config.routes[0]?.timeout, 6_000)
  },
)

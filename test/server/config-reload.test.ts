import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { RunningGateway } from '../../src/server/start.js'
import { makePki } from '../helpers/certificates.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { mkfifo } from '../helpers/fifo.js'
import { route, SESSION_SECRET } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { configText, LogLines, type Reloadable, startReloadable } from '../helpers/reloadable.js'
import { closed, nextMessage, openSocket, until, wsUpstream } from '../helpers/websocket.js'

/** `gatehouse_config_reloads_total{result}` as /metrics would show it. */
async function reloads(running: RunningGateway, result: 'applied' | 'rejected'): Promise<number> {
  const text = await running.app.gatehouse.metrics.registry.metrics()
  const line = new RegExp(`^gatehouse_config_reloads_total\\{result="${result}"\\} (\\d+)$`, 'm').exec(text)
  return Number(line?.[1] ?? Number.NaN)
}

const get = (url: string) => jarFetch(new CookieJar(), url)

t.test(
  'a ConfigMap ..data swap: the new route is served, the dropped one is gone, a request in flight finishes',
  async (t) => {
    const stack = await startReloadable(t, (upstream) => [
      route('/api/public', upstream, { token: 'none', csrf: false }),
      route('/api/old', upstream, { token: 'none', csrf: false }),
    ])
    const { url, upstream, running } = stack
    t.equal(await reloads(running, 'applied'), 0)
    t.equal((await get(`${url}/api/new/x`)).status, 404, 'not yet a route')

    // In flight on the old config when the swap happens: its upstream pool
    // must stay open until it is answered.
    const slow = get(`${url}/api/old/work?delayMs=1500`)
    await until(() => upstream.requests.some((r) => r.path.startsWith('/api/old/work')))

    stack.configMap.write(
      configText({
        ...stack.input,
        routes: [
          route('/api/public', upstream.url, { token: 'none', csrf: false }),
          route('/api/new', upstream.url, { token: 'none', csrf: false, rewritePath: '/v2' }),
        ],
      }),
    )
    t.ok(await until(async () => (await get(`${url}/api/new/x`)).status === 200), 'the new route is served')
    t.equal(upstream.requests.at(-1)?.path, '/v2/x', 'as the new config says')
    t.equal((await get(`${url}/api/old/x`)).status, 404, 'the dropped route is gone')
    t.equal((await get(`${url}/api/public/x`)).status, 200, 'the kept route still answers')
    t.equal((await slow).status, 200, 'the request in flight finished on the old config')
    t.equal(await reloads(running, 'applied'), 1)
    t.equal(running.config.routes.length, 2)
  },
)

t.test('an open WebSocket keeps its config: its route removed by a reload, it still relays', async (t) => {
  const ws = await wsUpstream(t)
  const stack = await startReloadable(t, (upstream) => [
    route('/api/public', upstream, { token: 'none', csrf: false }),
    route('/ws', ws.url, { token: 'none', csrf: false, websocket: true }),
  ])
  const headers = { origin: stack.url }
  const socket = await openSocket(`${stack.url.replace(/^http/, 'ws')}/ws`, headers)
  socket.send('before')
  t.equal(String(await nextMessage(socket)), 'before')

  const applied = await stack.running.reload()
  t.equal(applied.result, 'unchanged', 'the same file is no reload')
  stack.configMap.write(
    configText({
      ...stack.input,
      routes: [route('/api/public', stack.upstream.url, { token: 'none', csrf: false })],
    }),
  )
  t.ok(await until(async () => (await reloads(stack.running, 'applied')) === 1), 'reloaded')

  socket.send('after')
  t.equal(String(await nextMessage(socket)), 'after', 'the socket opened before still relays')
  const refused = await openSocket(`${stack.url.replace(/^http/, 'ws')}/ws`, headers).then(
    () => ({ status: 101 }),
    (err: { status: number }) => err,
  )
  t.equal(refused.status, 404, 'a new upgrade runs on the new config, which has no such route')
  const closing = closed(socket)
  socket.close(1000)
  t.equal((await closing).code, 1000)
})

t.test(
  'a file with problems is rejected whole: each problem logged with its line, config kept, counted, healthy',
  async (t) => {
    const lines: string[] = []
    const stack = await startReloadable(
      t,
      (upstream) => [route('/api/public', upstream, { token: 'none', csrf: false })],
      { logStream: { write: (line: string) => void lines.push(line) }, input: { logLevel: 'info' } },
    )
    const good = configText({
      ...stack.input,
      routes: [
        route('/api/public', stack.upstream.url, { token: 'none', csrf: false }),
        route('/api/new', stack.upstream.url, { token: 'none', csrf: false }),
      ],
    })
    // Two mistakes on known lines: an unknown option and a token mode that does not exist.
    const bad = good
      .replace('  level: info', '  level: info\n  colour: true')
      .replace(/(path: \/api\/new\n(?:.*\n)*?\s+token:) none/, '$1 sometimes')
    t.not(bad, good)
    const badLines = bad.split('\n')
    const colourLine = badLines.findIndex((l) => l.includes('colour: true')) + 1
    const tokenLine = badLines.findIndex((l) => l.includes('token: sometimes')) + 1

    stack.configMap.write(bad)
    t.ok(await until(async () => (await reloads(stack.running, 'rejected')) === 1), 'counted as rejected')
    const rejected = lines.filter((l) => l.includes('GATEHOUSE_CONFIG_RELOAD_REJECTED'))
    t.match(
      rejected.join('\n'),
      new RegExp(`routes\\.yaml:${colourLine} logging\\.colour: unknown option`),
      'the unknown option, with its line',
    )
    t.match(
      rejected.join('\n'),
      new RegExp(`routes\\.yaml:${tokenLine} routes\\[1\\]\\.token: must be one of`),
      'the bad token mode, with its line',
    )
    t.match(rejected.at(-1), /config reload rejected: .* has 2 problems; the running config is kept/)
    t.equal(await reloads(stack.running, 'applied'), 0)
    t.equal((await get(`${stack.url}/api/new/x`)).status, 404, 'nothing of the bad file was applied')
    t.equal((await get(`${stack.url}/api/public/x`)).status, 200, 'the running config serves on')
    t.equal((await get(`${stack.url}/healthz`)).status, 200)
    t.equal((await get(`${stack.url}/readyz`)).status, 200)

    // Fixed, it applies.
    stack.configMap.write(good)
    t.ok(
      await until(async () => (await get(`${stack.url}/api/new/x`)).status === 200),
      'the fixed file applies',
    )
    t.equal(await reloads(stack.running, 'applied'), 1)
    t.ok(lines.some((l) => l.includes('GATEHOUSE_CONFIG_RELOADED')))
  },
)

t.test('a setting only a restart can change is refused by name, and nothing else applies', async (t) => {
  const lines: string[] = []
  const stack = await startReloadable(
    t,
    (upstream) => [route('/api/public', upstream, { token: 'none', csrf: false })],
    { logStream: { write: (line: string) => void lines.push(line) }, input: { logLevel: 'info' } },
  )
  const port = stack.running.config.server.port
  const text = configText({
    ...stack.input,
    port: port + 1,
    store: 'redis://127.0.0.1:1',
    routes: [
      route('/api/public', stack.upstream.url, { token: 'none', csrf: false }),
      route('/api/new', stack.upstream.url, { token: 'none', csrf: false }),
    ],
  })
  stack.configMap.write(text)
  t.ok(await until(async () => (await reloads(stack.running, 'rejected')) === 1))
  const log = lines.join('\n')
  // Issue: "logs every problem with its line", these too.
  const refusal = lines.map((l) => JSON.parse(l)).find((l) => l.path === 'server.port')
  const portLine = text.split('\n').findIndex((l) => /\bport\b/.test(l)) + 1
  t.equal(refusal?.line, portLine, `server.port's refusal names its line (${portLine})`)
  t.match(refusal?.msg, new RegExp(`:${portLine} server\\.port: cannot change`), 'as check prints it')
  t.match(
    log,
    /server\.port: cannot change without a restart \(the listening socket is bound once, at start\)/,
  )
  t.match(log, /session\.store: cannot change without a restart/)
  t.match(log, /has 2 problems; the running config is kept/)
  t.equal((await get(`${stack.url}/api/new/x`)).status, 404, 'the route in the same file was not applied')
  t.equal(stack.running.config.server.port, port)
  t.equal(stack.running.config.session.store.kind, 'memory', 'nor the store')
  t.equal((await get(`${stack.url}/readyz`)).status, 200)

  // Fixed: the restart settings put back, the route kept. Nothing of the
  // refused file lingers, and the allowed change applies.
  stack.configMap.write(withNewRoute(stack))
  t.ok(
    await until(async () => (await get(`${stack.url}/api/new/x`)).status === 200),
    'the fixed file applies',
  )
  t.equal(await reloads(stack.running, 'applied'), 1)
  t.equal(await reloads(stack.running, 'rejected'), 1, 'the fix refused nothing more')
  t.equal(stack.running.config.server.port, port)
})

/** The text of a config that adds `/api/new` to the stack's public route. */
const withNewRoute = (stack: Reloadable) =>
  configText({
    ...stack.input,
    routes: [
      route('/api/public', stack.upstream.url, { token: 'none', csrf: false }),
      route('/api/new', stack.upstream.url, { token: 'none', csrf: false }),
    ],
  })

/** The reload's refusal of the file: the one problem's line, and the summary after it. */
async function refusal(log: LogLines, file: string) {
  const summary = await log.seen('the refusal', (l) => /^config reload rejected:/.test(l.msg))
  const problems = log.lines.filter(
    (l) => l.code === 'GATEHOUSE_CONFIG_RELOAD_REJECTED' && l.msg !== summary.msg && l.file === file,
  )
  return { summary: summary.msg, problems: problems.map((l) => l.msg) }
}

const NOT_REGULAR =
  'is a FIFO (named pipe), not a regular file: a config file must be a regular file or a symlink to one'

t.test(
  'a FIFO in place of the file and a SIGHUP: refused at once by name, the running config serves on, healthy',
  async (t) => {
    const log = new LogLines()
    const stack = await startReloadable(
      t,
      (upstream) => [route('/api/public', upstream, { token: 'none', csrf: false })],
      { handleSignals: true, watch: false, logStream: log.stream, input: { logLevel: 'info' } },
    )
    const { running, configMap, url } = stack
    const before = running.config
    // The operator's mistake as reported: its open(2) for reading blocks until a writer comes.
    rmSync(configMap.file)
    mkfifo(configMap.file)
    process.kill(process.pid, 'SIGHUP')
    const [during, refused] = await Promise.all([get(`${url}/healthz`), refusal(log, configMap.file)])
    t.equal(during.status, 200, '/healthz answers while the FIFO is in place')
    t.same(refused.problems, [`${configMap.file} ${NOT_REGULAR}`], 'the problem, naming the file')
    t.match(refused.summary, /has 1 problem; the running config is kept/)
    t.equal(await reloads(running, 'rejected'), 1)
    t.equal(running.config, before, 'the running config is kept')
    t.equal((await get(`${url}/api/public/x`)).status, 200, 'and serves')
    t.equal((await get(`${url}/healthz`)).status, 200)

    // A regular file put back applies on the next signal: nothing was left waiting.
    rmSync(configMap.file)
    writeFileSync(configMap.file, withNewRoute(stack))
    process.kill(process.pid, 'SIGHUP')
    t.ok(await until(async () => (await get(`${url}/api/new/x`)).status === 200), 'the fixed file applies')
    t.equal(await reloads(running, 'applied'), 1)
  },
)

t.test(
  'a FIFO renamed over the file is a change the watch sees and the reload refuses, at once',
  async (t) => {
    const log = new LogLines()
    const stack = await startReloadable(
      t,
      (upstream) => [route('/api/public', upstream, { token: 'none', csrf: false })],
      { logStream: log.stream, input: { logLevel: 'info' } },
    )
    const { running, configMap, url } = stack
    const before = running.config
    // Made under another name, which the watch passes over, then swapped in at once.
    const fifo = join(configMap.dir, 'routes.yaml.fifo')
    mkfifo(fifo)
    renameSync(fifo, configMap.file)
    const refused = await refusal(log, configMap.file)
    t.same(refused.problems, [`${configMap.file} ${NOT_REGULAR}`])
    t.equal(log.lines.find((l) => l.msg === refused.summary)?.trigger, 'file', 'the watch asked for it')
    t.equal((await get(`${url}/healthz`)).status, 200)
    const called = await running.reload()
    t.same(
      called,
      { result: 'rejected', problems: [{ path: '', message: NOT_REGULAR }] },
      'a reload asked for by call is refused the same way',
    )
    t.equal(await reloads(running, 'rejected'), 2)
    t.equal(running.config, before, 'the running config is kept')
    t.equal((await get(`${url}/healthz`)).status, 200)
  },
)

t.test('a config file over 1 MiB is refused by its size on reload: the running config is kept', async (t) => {
  const log = new LogLines()
  const stack = await startReloadable(
    t,
    (upstream) => [route('/api/public', upstream, { token: 'none', csrf: false })],
    { logStream: log.stream, input: { logLevel: 'info' } },
  )
  const { running, configMap, url } = stack
  const before = running.config
  // Valid but for its size: a comment pads it past the bound.
  const good = withNewRoute(stack)
  const MiB = 1024 * 1024
  const large = `${good}#${'x'.repeat(MiB)}\n`
  configMap.write(large)
  const refused = await refusal(log, configMap.file)
  const tooLarge = `is ${Buffer.byteLength(large)} bytes; a config file may be at most 1 MiB`
  t.same(refused.problems, [`${configMap.file} ${tooLarge}`], 'refused by its size, naming the file')
  t.same(await running.reload(), { result: 'rejected', problems: [{ path: '', message: tooLarge }] })
  t.equal(await reloads(running, 'rejected'), 2)
  t.equal(running.config, before, 'the running config is kept')
  t.equal((await get(`${url}/api/new/x`)).status, 404, 'nothing of the large file applied')
  t.equal((await get(`${url}/healthz`)).status, 200)

  configMap.write(good)
  t.ok(
    await until(async () => (await get(`${url}/api/new/x`)).status === 200),
    'the same config, smaller, applies',
  )
  t.equal(await reloads(running, 'applied'), 1)
})

t.test('SIGHUP reloads the file', async (t) => {
  const stack = await startReloadable(
    t,
    (upstream) => [route('/api/public', upstream, { token: 'none', csrf: false })],
    { handleSignals: true, watch: false },
  )
  stack.configMap.write(
    configText({
      ...stack.input,
      logLevel: 'debug',
      routes: [
        route('/api/public', stack.upstream.url, { token: 'none', csrf: false }),
        route('/api/new', stack.upstream.url, { token: 'none', csrf: false }),
      ],
    }),
  )
  t.equal(stack.running.config.routes.length, 1, 'not watched: nothing happens by itself')
  process.kill(process.pid, 'SIGHUP')
  t.ok(await until(async () => (await get(`${stack.url}/api/new/x`)).status === 200), 'served after SIGHUP')
  t.equal(stack.running.app.log.level, 'debug', 'the log level changed with it')
})

t.test(
  'sessions survive reloads, and secrets: [new, old] keeps the cookies sealed with the old',
  async (t) => {
    const stack = await startReloadable(t, (upstream) => [route('/api/orders', upstream)])
    const { jar } = await login(stack.url)
    t.equal((await apiCall(jar, `${stack.url}/api/orders`)).status, 200)
    const logins = stack.idp.stats.authorizationCodeGrants

    stack.configMap.write(
      configText({
        ...stack.input,
        routes: [route('/api/orders', stack.upstream.url), route('/api/first', stack.upstream.url)],
      }),
    )
    t.ok(await until(async () => (await reloads(stack.running, 'applied')) === 1))
    const first = await apiCall(jar, `${stack.url}/api/first`)
    t.equal(first.status, 200, 'the session survives a reload')

    const rotated = 'a-new-session-secret-of-at-least-32-characters'
    stack.configMap.write(
      configText({
        ...stack.input,
        secrets: [rotated, SESSION_SECRET],
        routes: [route('/api/orders', stack.upstream.url), route('/api/more', stack.upstream.url)],
      }),
    )
    t.ok(await until(async () => (await reloads(stack.running, 'applied')) === 2))
    const more = await apiCall(jar, `${stack.url}/api/more`)
    t.equal(more.status, 200, 'the old cookie opens the session')
    t.equal((await apiCall(jar, `${stack.url}/api/orders`)).status, 200)
    t.equal(stack.idp.stats.authorizationCodeGrants, logins, 'no one signed in again')

    const fresh = await login(stack.url)
    t.equal((await apiCall(fresh.jar, `${stack.url}/api/more`)).status, 200, 'a new login works')
    // The old secret dropped: a cookie sealed with the new one still opens.
    stack.configMap.write(
      configText({
        ...stack.input,
        secrets: [rotated],
        routes: [route('/api/orders', stack.upstream.url), route('/api/more', stack.upstream.url)],
      }),
    )
    t.ok(await until(async () => (await reloads(stack.running, 'applied')) === 3))
    t.equal((await apiCall(fresh.jar, `${stack.url}/api/more`)).status, 200, 'sealed with the new secret')
  },
)

t.test('a reload that renews or removes a client certificate: the days-left gauge follows it', async (t) => {
  const pki = makePki(t)
  const meshRoute = (name: string) => {
    const client = pki.issue(name)
    return route('/api/mesh', 'https://127.0.0.1:1', {
      token: 'none',
      csrf: false,
      tls: { cert: { file: client.certFile }, key: { file: client.keyFile }, ca: { file: pki.ca.certFile } },
    })
  }
  const publicRoute = (upstream: string) => route('/api/public', upstream, { token: 'none', csrf: false })
  const stack = await startReloadable(t, (upstream) => [publicRoute(upstream), meshRoute('mesh-2026')])
  const { running, upstream } = stack
  const series = async () =>
    [
      ...(await running.app.gatehouse.metrics.registry.metrics()).matchAll(
        /^gatehouse_tls_client_certificate_days_left\{option="([^"]+)"\}/gm,
      ),
    ].map((m) => m[1])
  t.same(await series(), ['routes[1].tls'])

  // A config that names files is checked on a thread of its own (reload-check.ts), whose start
  // a loaded machine stretches past until's bound: the reload is awaited, whether it or the
  // watch's read the file first.
  stack.configMap.write(
    configText({ ...stack.input, routes: [publicRoute(upstream.url), meshRoute('mesh-2027')] }),
  )
  await running.reload()
  t.equal(await reloads(running, 'applied'), 1, 'the renewal is applied')
  t.same(await series(), ['routes[1].tls'], 'the renewed certificate is measured')

  stack.configMap.write(configText({ ...stack.input, routes: [publicRoute(upstream.url)] }))
  await running.reload()
  t.equal(await reloads(running, 'applied'), 2, 'the removal is applied')
  t.same(await series(), [], 'a certificate no longer in use has no series: its alert stops')
})

t.test(
  'a route added or removed that asks the login for nothing new keeps the discovered IdP client',
  async (t) => {
    const publicRoute = (upstream: string) => route('/api/public', upstream, { token: 'none', csrf: false })
    const stack = await startReloadable(t, (upstream) => [publicRoute(upstream)])
    const { running, upstream } = stack
    const client = running.app.gatehouse.oidc

    stack.configMap.write(
      configText({ ...stack.input, routes: [publicRoute(upstream.url), route('/api/orders', upstream.url)] }),
    )
    t.ok(await until(async () => (await reloads(running, 'applied')) === 1), 'a user route added')
    t.equal(
      running.app.gatehouse.oidc,
      client,
      'the running client is kept: no discovery to wait for, or fail',
    )

    stack.configMap.write(configText({ ...stack.input, routes: [publicRoute(upstream.url)] }))
    t.ok(await until(async () => (await reloads(running, 'applied')) === 2), 'and removed')
    t.equal(running.app.gatehouse.oidc, client)

    stack.configMap.write(
      configText({
        ...stack.input,
        routes: [
          publicRoute(upstream.url),
          route('/api/reports', upstream.url, { resource: 'https://reports.example' }),
        ],
      }),
    )
    t.ok(await until(async () => (await reloads(running, 'applied')) === 3), 'a route with a resource added')
    t.not(running.app.gatehouse.oidc, client, 'the login now asks for that resource: a new client')
  },
)

t.test(
  'a reload that changes only the tokens block keeps the discovered IdP client and applies while the IdP is down',
  async (t) => {
    const stack = await startReloadable(t, (upstream) => [route('/api/orders', upstream)], {
      input: { refreshBefore: 30_000 },
    })
    const { running, upstream } = stack
    const client = running.app.gatehouse.oidc
    const tokens = running.app.gatehouse.userTokens
    await stack.idp.close()

    stack.configMap.write(
      configText({ ...stack.input, routes: [route('/api/orders', upstream.url)], refreshBefore: 45_000 }),
    )
    t.ok(
      await until(async () => (await reloads(running, 'applied')) === 1),
      'applied with the IdP unreachable: nothing to discover again',
    )
    t.equal(await reloads(running, 'rejected'), 0)
    t.equal(running.config.tokens.refreshBefore, 45_000)
    t.equal(running.app.gatehouse.oidc, client, 'the running client is kept')
    t.not(running.app.gatehouse.userTokens, tokens, 'the token services take the new settings')
  },
)

t.test(
  'one broken edit that is both signalled and seen by the watch is rejected and counted once',
  async (t) => {
    const lines: string[] = []
    const stack = await startReloadable(
      t,
      (upstream) => [route('/api/public', upstream, { token: 'none', csrf: false })],
      {
        logStream: { write: (line: string) => lines.push(line) },
        input: { logLevel: 'info' },
      },
    )
    const { running } = stack
    stack.configMap.write('server: { port: [unclosed\n')
    // As SIGHUP does, before the watch's quiet period has passed.
    t.equal((await running.reload()).result, 'rejected')
    t.equal(await reloads(running, 'rejected'), 1)
    // The watch's reload may come while the signalled one still runs, and
    // then waits for it ("runs after it") before it finds nothing to do.
    t.ok(
      await until(() =>
        lines.some(
          (l) =>
            l.includes('"trigger":"file"') && l.includes('read by the last reload already; nothing to do'),
        ),
      ),
      'the watch saw the same edit, found it read by the last reload, and did nothing',
    )
    t.equal(await reloads(running, 'rejected'), 1, 'the edit is counted once')
  },
)

t.test('a provider removed by a reload: its sessions say they cannot refresh, as they cannot', async (t) => {
  const both = (issuer: string) => [
    { name: 'corp', issuer },
    { name: 'partner', issuer },
  ]
  // The same IdP serves both names: what matters is the name a session carries.
  const stack = await startReloadable(t, (upstream) => [route('/api/orders', upstream)], {
    input: (issuer) => ({ identityProviders: both(issuer) }),
  })
  const { jar } = await login(stack.url, { params: { idp: 'partner' } })
  const user = async () =>
    (await apiCall(jar, `${stack.url}/auth/user`)).json<{ idp: string; refreshable: boolean }>()
  t.match(await user(), { idp: 'partner', refreshable: true })
  stack.configMap.write(
    configText({ ...stack.input, identityProviders: [{ name: 'corp', issuer: stack.idp.issuer }] }),
  )
  t.ok(await until(async () => (await reloads(stack.running, 'applied')) === 1))
  t.match(await user(), { idp: 'partner', refreshable: false }, 'no provider left to refresh with')
})

t.test(
  'a file that changes a restart setting and has other problems: one refusal names them all, each at its line',
  async (t) => {
    const log = new LogLines()
    const stack = await startReloadable(
      t,
      (upstream) => [route('/api/public', upstream, { token: 'none', csrf: false })],
      { logStream: log.stream, input: { logLevel: 'info' } },
    )
    const { running, configMap } = stack
    const port = running.config.server.port
    const text = `${configText({ ...stack.input, port: port + 1 })}bogus: 1\n`
    const lineOf = (pattern: RegExp) => text.split('\n').findIndex((l) => pattern.test(l)) + 1
    configMap.write(text)
    const { summary } = await refusal(log, configMap.file)
    t.match(summary, /has 2 problems; the running config is kept/)
    const problems = log.lines
      .filter((l) => l.code === 'GATEHOUSE_CONFIG_RELOAD_REJECTED' && l.path !== undefined)
      .map((l) => [l.path, l.line])
    t.same(
      problems,
      [
        ['server.port', lineOf(/^\s+port:/)],
        ['bogus', lineOf(/^bogus:/)],
      ],
      'the unknown option and the port, each at its line',
    )
    t.equal(await reloads(running, 'rejected'), 1, 'one refusal')
    t.equal(running.config.server.port, port)
  },
)

t.test(
  'a file refused for one reason, then put back refused for another, is refused again: each is logged and counted',
  async (t) => {
    const log = new LogLines()
    const stack = await startReloadable(
      t,
      (upstream) => [route('/api/public', upstream, { token: 'none', csrf: false })],
      { logStream: log.stream, input: { logLevel: 'info' } },
    )
    const { running, configMap, url } = stack
    const before = running.config
    const summaries = () => log.lines.filter((l) => /^config reload rejected:/.test(l.msg)).length
    const refusedFor = async (what: string, reason: RegExp) => {
      const line = await log.seen(
        what,
        (l) =>
          l.code === 'GATEHOUSE_CONFIG_RELOAD_REJECTED' && l.file === configMap.file && reason.test(l.msg),
      )
      t.match(line.msg, reason, what)
    }
    // A deploy that goes wrong step by step: the file deleted, a directory
    // made in its place, then a FIFO, then a file far over the bound.
    rmSync(configMap.file)
    await refusedFor('the file deleted', /file not found/)
    mkdirSync(configMap.file)
    await refusedFor('a directory in its place', /is a directory, not a regular file/)
    rmSync(configMap.file, { recursive: true })
    const fifo = join(configMap.dir, 'routes.yaml.fifo')
    mkfifo(fifo)
    renameSync(fifo, configMap.file)
    await refusedFor('a FIFO in its place', /is a FIFO \(named pipe\), not a regular file/)
    const large = join(configMap.dir, 'routes.yaml.large')
    writeFileSync(large, Buffer.alloc(2 * 1024 * 1024, '#'))
    renameSync(large, configMap.file)
    await refusedFor('a 2 MiB file in its place', /is 2097152 bytes; a config file may be at most 1 MiB/)

    t.equal(summaries(), 4, 'four refusals, one for each')
    t.equal(await reloads(running, 'rejected'), 4, 'each counted')
    t.equal(running.config, before, 'the running config is kept')
    t.equal((await get(`${url}/healthz`)).status, 200)
  },
)

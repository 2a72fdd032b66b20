import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { startDevIdp } from '../../dev/idp.js'
import { type EchoUpstream, startEchoUpstream } from '../../dev/upstream.js'
import { typescriptFlags } from '../helpers/child-node.js'
import { CLIENT_ID, CLIENT_SECRET, SESSION_SECRET } from '../helpers/gateway.js'
import { REFUSED_URL } from '../helpers/ports.js'
import { pollUntil } from '../helpers/redis.js'
import { closed, stalledBehind, wsUpstream } from '../helpers/websocket.js'

interface CliGateway {
  readonly child: ChildProcess
  readonly upstream: EchoUpstream
  /** The address the startup line names. */
  readonly url: string | undefined
  /** Everything the process has written so far, stdout and stderr. */
  output(): string
  /** Its exit code and signal, once it has exited. */
  readonly exited: Promise<unknown[]>
}

const LISTENING = /gatehouse listening on (http:\/\/127\.0\.0\.1:\d+)/

/**
 * `gatehouse start` as a process of its own, with a public route to an echo
 * upstream, once it is listening and has discovered its IdP. No one signs
 * in: the IdP needs no real redirect URI, and the gateway binds port 0 and
 * says in its startup line which port it got.
 */
async function startCli(
  t: Test,
  extraConfig = '',
  env: NodeJS.ProcessEnv = {},
  serverExtra = '',
  routesExtra = '',
): Promise<CliGateway> {
  const idp = await startDevIdp({
    clients: [
      { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: ['http://127.0.0.1/auth/callback'] },
    ],
  })
  t.teardown(() => idp.close())
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  const file = join(mkdtempSync(join(tmpdir(), 'gatehouse-shutdown-')), 'routes.yaml')
  writeFileSync(
    file,
    `server: { host: 127.0.0.1, port: 0, publicUrl: "http://127.0.0.1"${serverExtra} }
oidc: { issuer: "${idp.issuer}", clientId: ${CLIENT_ID}, clientSecret: "\${OIDC_CLIENT_SECRET}" }
session: { secret: "\${SESSION_SECRET}" }
metrics: { port: 0 }
${extraConfig}
routes:
  - { path: /api/public, upstream: "${upstream.url}", token: none, csrf: false }
${routesExtra}
`,
  )
  const child = spawn(process.execPath, [...typescriptFlags, 'src/cli/index.ts', 'start', '--config', file], {
    env: { ...process.env, OIDC_CLIENT_SECRET: CLIENT_SECRET, SESSION_SECRET, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const collect = (d: Buffer) => {
    output += d.toString()
  }
  child.stdout.on('data', collect)
  child.stderr.on('data', collect)
  const exited = once(child, 'exit')
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  // The two lines come in either order.
  await pollUntil(async () => output.includes('OpenID Provider discovered') && LISTENING.test(output), 20_000)
  return { child, upstream, url: LISTENING.exec(output)?.[1], output: () => output, exited }
}

t.test(
  'SIGTERM during a slow upstream call, then SIGHUP: the call finishes with 200 and the process exits 0',
  async (t) => {
    const { child, upstream, url, output, exited } = await startCli(t)
    t.match(
      output(),
      /gatehouse listening on .*1 routes, memory store, issuer/,
      'one startup line sums up routes, store and issuer',
    )
    t.ok(url, 'the startup line names the address')
    t.match(
      output(),
      /"redirectUris":\{"default":\["http:\/\/127\.0\.0\.1\/auth\/callback"\]\}/,
      'and the redirect URI to register at the IdP',
    )
    const slow = fetch(`${url}/api/public/work?delayMs=1500`)
    await pollUntil(async () => upstream.requests.some((r) => r.path.startsWith('/api/public/work')))
    child.kill('SIGTERM')
    // A reload asked for while draining (a ConfigMap tool, a script) must
    // not end the process by SIGHUP's default action mid-request.
    await pollUntil(async () => output().includes('shutting down'))
    child.kill('SIGHUP')

    const response = await slow
    t.equal(response.status, 200, 'the request in flight finished')
    const [code, signal] = await exited
    t.equal(signal, null, 'not ended by a signal')
    t.equal(code, 0, 'exit 0')
    t.match(output(), /SIGHUP while shutting down: no reload/)
    t.match(output(), /shutting down/)
    t.notMatch(output(), /\n\s+at /, 'no stack trace')
  },
)

t.test(
  'server.drainTimeout bounds the drain: a request still running then is cut off, and the exit says so',
  async (t) => {
    const { upstream, child, url, output, exited } = await startCli(t, '', {}, ', drainTimeout: 1s')
    t.match(output(), /drainTimeout: 1s is shorter than routes\[0\]\.timeout/, 'check warns of it at start')
    const slow = fetch(`${url}/api/public/work?delayMs=5000`).then(
      (r) => r.status,
      () => 'cut off',
    )
    await pollUntil(async () => upstream.requests.some((r) => r.path.startsWith('/api/public/work')))
    const stopping = performance.now()
    child.kill('SIGTERM')
    const [code] = await exited
    t.equal(code, 1, 'exit 1: a request was still in flight')
    t.ok(performance.now() - stopping < 4_000, 'after the configured second, not the request')
    t.equal(await slow, 'cut off')
    t.match(output(), /drain timeout reached/)
  },
)

/**
 * A collector that refuses connections, or takes them and never answers:
 * the spans still buffered at SIGTERM cannot be exported. That is logged,
 * and neither decides the exit code nor holds the process past the drain.
 */
for (const collector of ['refusing', 'silent'] as const) {
  t.test(`SIGTERM with a ${collector} trace collector: spans lost are logged, the exit is 0`, async (t) => {
    const silent = createServer(() => {})
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    t.teardown(() => {
      silent.closeAllConnections()
      silent.close()
    })
    const endpoint =
      collector === 'refusing' ? REFUSED_URL : `http://127.0.0.1:${(silent.address() as AddressInfo).port}`
    const { child, url, output, exited } = await startCli(t, 'tracing: { enabled: true }', {
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_TRACES_SAMPLER: 'always_on',
    })
    for (let i = 0; i < 5; i++) t.equal((await fetch(`${url}/api/public/x`)).status, 200)
    const stopping = performance.now()
    child.kill('SIGTERM')
    const [code, signal] = await exited
    t.equal(signal, null)
    t.equal(code, 0, 'exit 0: the gateway drained; only spans were lost')
    t.ok(performance.now() - stopping < 8_000, 'the flush does not take the whole drain budget')
    t.match(output(), /spans still buffered at shutdown were not exported/)
    t.notMatch(output(), /error during shutdown|drain timeout reached/)
  })
}

/**
 * A socket whose browser keeps sending but reads nothing of what is queued
 * ahead of the gateway's close frame: the traffic shows it alive, so only
 * `ws`'s close timer (two ping intervals and a grace, 62 s by default)
 * bounded its close, past any drain: the process was cut off at
 * `server.drainTimeout` with exit 1, as if a request had been. A wss://
 * upstream that stops reading was held so too. What is left of the
 * sockets' closing is dropped just before the drain ends.
 */
t.test(
  'SIGTERM with a socket whose browser sends but never reads: dropped as the drain ends, exit 0',
  async (t) => {
    const MiB = 1024 * 1024
    const upstream = await wsUpstream(t, { maxPayload: 64 * MiB })
    const { child, url, output, exited } = await startCli(
      t,
      '',
      {},
      ', drainTimeout: 3s',
      `  - { path: /live, upstream: "${upstream.url}", token: none, csrf: false, websocket: { maxMessage: ${32 * MiB} } }`,
    )
    const { browser, upstreamLeg } = await stalledBehind(
      t,
      upstream,
      `${url!.replace(/^http/, 'ws')}/live/feed`,
      { origin: url! },
      16 * MiB,
    )
    const atUpstream = closed(upstreamLeg)
    const sending = setInterval(() => browser.send('still here'), 50)
    t.teardown(() => clearInterval(sending))

    const stopping = performance.now()
    child.kill('SIGTERM')
    const [code, signal] = await exited
    const took = performance.now() - stopping
    t.equal(signal, null)
    t.equal(code, 0, 'exit 0: the sockets were closed, no request was cut off')
    t.ok(took < 6_000, `within the drain (${Math.round(took)} ms), not at the close timer`)
    t.notMatch(output(), /drain timeout reached/)
    t.same(await atUpstream, { code: 1001, reason: 'gateway shutting down' }, 'the upstream was told')
  },
)

/**
 * The container image as users run it: built from the Dockerfile (by
 * .ci/image, which CI runs before the suite), then run read-only, as user
 * 1000, with no capabilities and no tmpfs, against a real IdP, upstream and
 * Redis on the host. Its HEALTHCHECK passes, a user signs in through it and
 * calls an API, SIGTERM drains a request in flight and exits 0, and nothing
 * of the CA bundle the build was handed is left in the image.
 */
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { rootCertificates } from 'node:tls'
import { Redis } from 'ioredis'
import t from 'tap'
import { startDevIdp } from '../../dev/idp.js'
import { startEchoUpstream } from '../../dev/upstream.js'
import { parseDuration } from '../../src/config/duration.js'
import { DEFAULTS } from '../../src/config/schema.js'
import { CLIENT_ID, CLIENT_SECRET, SESSION_SECRET } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { BUILD_SCRIPT, exportFilesystem, podman, ulimitsBelowHost } from '../helpers/podman.js'
import { addressInUse, onFreePort } from '../helpers/ports.js'
import { startRedis } from '../helpers/redis.js'
import { onPath, type Ran, run } from '../helpers/run.js'
import { pollUntil } from '../helpers/within.js'

const prebuilt = process.env.GATEHOUSE_TEST_IMAGE
const skip =
  onPath('podman') || process.env.CI
    ? false
    : 'podman is not installed (.ci/run installs it; with CI set this test never skips)'
// A first build (debootstrap, then npm ci twice) takes minutes; a prebuilt
// image leaves only the run.
t.setTimeout(prebuilt ? 300_000 : 1_500_000)

/** The image to run: CI's, or one built now by the same script. */
async function image(): Promise<string> {
  if (prebuilt) return prebuilt
  const built = await run('bash', [BUILD_SCRIPT], 1_400_000)
  if (built.code !== 0) throw new Error(`.ci/image exited ${built.code}:\n${built.stderr.slice(-4_000)}`)
  return built.stdout.trim().split('\n').at(-1)!
}

/** Whether `url` answers 200 within a second. */
async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(1_000) })
    await response.body?.cancel()
    return response.status === 200
  } catch {
    return false
  }
}

function check(ran: Ran, what: string): string {
  if (ran.code !== 0) throw new Error(`${what} exited ${ran.code}: ${ran.stderr || ran.stdout}`)
  return ran.stdout.trim()
}

const pemsIn = (text: string) =>
  text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []
const normalise = (pem: string) => pem.replace(/\s+/g, '')

/**
 * The certificates of the build's CA bundle (as .ci/image picks it) that
 * neither Node nor Debian ship: on these machines the TLS proxy's CA, the
 * one thing the image must not keep. Each is looked for by a line of its
 * PEM body.
 */
function hostOnlyCertificateLines(): string[] {
  const bundle =
    process.env.CI_CA_BUNDLE ?? process.env.NODE_EXTRA_CA_CERTS ?? '/etc/ssl/certs/ca-certificates.crt'
  if (!existsSync(bundle)) return []
  const debian = '/usr/share/ca-certificates'
  const shipped = new Set(
    [
      ...rootCertificates,
      ...(existsSync(debian)
        ? readdirSync(debian, { recursive: true, encoding: 'utf8' })
            .filter((file) => file.endsWith('.crt'))
            .flatMap((file) => pemsIn(readFileSync(join(debian, file), 'utf8')))
        : []),
    ].map(normalise),
  )
  return pemsIn(readFileSync(bundle, 'utf8'))
    .filter((pem) => !shipped.has(normalise(pem)))
    .map((pem) => pem.split('\n').filter((line) => /^[A-Za-z0-9+/=]{64}$/.test(line))[2])
    .filter((line): line is string => line !== undefined)
}

t.test('the image runs read-only as user 1000 and serves a sign-in', { skip }, async (t) => {
  t.ok(onPath('podman'), 'podman is on PATH (.ci/run installs it)')
  const tag = await image()
  const inspected = JSON.parse(check(await podman(['image', 'inspect', tag]), 'podman image inspect'))[0]
  const size = inspected.Size as number
  t.comment(`image ${tag}: ${(size / 1e6).toFixed(0)} MB`)

  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  const name = `gatehouse-image-test-${process.pid}`
  await podman(['rm', '--force', name])
  t.teardown(async () => {
    await podman(['rm', '--force', name])
  })
  const logs = async () => {
    const ran = await podman(['logs', name])
    return ran.stdout + ran.stderr
  }
  // Mounted as a directory at /etc/gatehouse, as a Kubernetes ConfigMap is;
  // the container's user 1000 must be able to read it.
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-image-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  chmodSync(dir, 0o755)
  // --network host: the gateway binds the port its config names on the
  // host itself, so the port is chosen first, and the IdP must know it for
  // the redirect URI. onFreePort runs this again on another port when a
  // container finds its port taken.
  const { gateway, idp, exited, started, live } = await onFreePort(async (port) => {
    const gateway = `http://127.0.0.1:${port}`
    const idp = await startDevIdp({
      clients: [
        {
          clientId: CLIENT_ID,
          clientSecret: CLIENT_SECRET,
          redirectUris: [`${gateway}/auth/callback`],
          postLogoutRedirectUris: [`${gateway}/`],
        },
      ],
    })

    writeFileSync(
      join(dir, 'routes.yaml'),
      `server: { host: 127.0.0.1, port: ${port}, publicUrl: "${gateway}" }
oidc:
  issuer: "${idp.issuer}"
  clientId: ${CLIENT_ID}
  clientSecret: "\${OIDC_CLIENT_SECRET}"
  authorizationParams: { prompt: consent }
session: { secret: "\${SESSION_SECRET}", store: "\${SESSION_STORE}", keyPrefix: "${redis.prefix}" }
metrics: { port: 0 }
routes:
  - { path: /api/orders, upstream: "${upstream.url}", timeout: 5s }
  - { path: /api/public, upstream: "${upstream.url}", token: none, csrf: false }
`,
      { mode: 0o644 },
    )

    await podman(['rm', '--force', name])
    const started = performance.now()
    // --network host: the IdP, upstream and Redis listen on the host's
    // loopback, and the gateway reaches the IdP at the same issuer URL the
    // browser does. --read-only-tmpfs=false: podman would otherwise add
    // writable tmpfs on /tmp, /var/tmp and /run, which Docker's --read-only
    // and Kubernetes' readOnlyRootFilesystem do not.
    check(
      await podman([
        'run',
        '--detach',
        '--name',
        name,
        '--network',
        'host',
        '--read-only',
        '--read-only-tmpfs=false',
        '--user',
        '1000:1000',
        '--cap-drop',
        'ALL',
        '--security-opt',
        'no-new-privileges',
        ...ulimitsBelowHost({ nofile: 4_096, nproc: 1_024 }),
        '--volume',
        `${dir}:/etc/gatehouse:ro`,
        '--env',
        `OIDC_CLIENT_SECRET=${CLIENT_SECRET}`,
        '--env',
        `SESSION_SECRET=${SESSION_SECRET}`,
        '--env',
        `SESSION_STORE=${redis.url}`,
        tag,
      ]),
      'podman run',
    )
    // Resolves with the exit code when the container stops, however it stops.
    const exited = podman(['wait', name], 600_000).then((ran) => check(ran, 'podman wait'))
    exited.catch(() => {})

    const up = pollUntil(() => answers(`${gateway}/healthz`), 30_000)
    const died = exited.then((code) => {
      throw new Error(`exited ${code}`)
    })
    died.catch(() => {})
    try {
      await Promise.race([up, died])
    } catch (err) {
      const output = await logs()
      await podman(['rm', '--force', name])
      await idp.close()
      const message = `the container did not come up (${(err as Error).message}); its output:\n${output}`
      throw /EADDRINUSE/.test(output) ? addressInUse(message) : new Error(message)
    }
    return { gateway, idp, exited, started, live: performance.now() - started }
  })
  t.teardown(() => idp.close())
  await pollUntil(() => answers(`${gateway}/readyz`), 30_000)
  const ready = performance.now() - started
  t.comment(`podman run to /healthz 200: ${live.toFixed(0)} ms; to /readyz 200: ${ready.toFixed(0)} ms`)

  await t.test('it runs as 1000:1000 with no capability and nothing writable', async (t) => {
    const exec = async (...argv: string[]) => check(await podman(['exec', name, ...argv]), argv.join(' '))
    t.equal(await exec('id', '-u'), '1000')
    t.equal(await exec('id', '-g'), '1000')
    const status = await exec('cat', '/proc/1/status')
    t.match(status, /^CapEff:\s+0+$/m, 'no effective capability')
    t.match(status, /^CapBnd:\s+0+$/m, 'none to gain')
    t.match(status, /^NoNewPrivs:\s+1$/m)
    const writes = await exec(
      'node',
      '-e',
      `for (const dir of ['/app', '/tmp', '/var/tmp', '/run', '/home/node', '/etc/gatehouse']) {
        try { require('fs').writeFileSync(dir + '/probe', ''); console.log(dir, 'written') }
        catch (err) { console.log(dir, err.code) }
      }`,
    )
    for (const line of writes.split('\n')) t.match(line, / EROFS$/, `${line}: read-only`)
  })

  await t.test('its HEALTHCHECK passes', async (t) => {
    const healthcheck = inspected.Healthcheck ?? inspected.Config?.Healthcheck
    t.match(healthcheck?.Test, ['CMD', 'node', 'dist/cli/index.js', 'health'], 'the image carries it')
    const ran = await podman(['healthcheck', 'run', name])
    t.equal(ran.code, 0, `podman healthcheck run: ${ran.stdout.trim()} ${ran.stderr.trim()}`)
    const state = JSON.parse(check(await podman(['inspect', name]), 'podman inspect'))[0].State
    t.equal(state.Health?.Status ?? state.Healthcheck?.Status, 'healthy')

    // A bad edit of the mounted config: the reload is refused, the running
    // config kept, and the process stays healthy, so its HEALTHCHECK must too.
    const file = join(dir, 'routes.yaml')
    const good = readFileSync(file, 'utf8')
    writeFileSync(file, good.replace('token: none', 'token: nnone'))
    await pollUntil(async () => (await logs()).includes('config reload rejected'), 30_000)
    const afterTypo = await podman(['healthcheck', 'run', name])
    t.equal(
      afterTypo.code,
      0,
      `after a refused reload: ${afterTypo.stdout.trim()} ${afterTypo.stderr.trim()}`,
    )
    writeFileSync(file, good)
    await pollUntil(async () => (await logs()).includes('the file holds the running config'), 30_000)
  })

  await t.test('a user signs in through the dev IdP and calls an API', async (t) => {
    const { jar, callback } = await login(gateway)
    t.equal(callback.status, 302, 'the callback signs the user in')
    t.equal(callback.location, `${gateway}/`, 'and sends them home')
    const api = await apiCall(jar, `${gateway}/api/orders/42`)
    t.equal(api.status, 200)
    t.equal(api.json<{ path: string }>().path, '/api/orders/42')
    const seen = upstream.requests.find((r) => r.path === '/api/orders/42')
    const token = seen?.authorization?.replace(/^Bearer /, '')
    t.ok(token && (await idp.isActive(token)), 'the upstream got an access token the IdP issued')
    t.notOk(seen?.headers.cookie, 'and no cookie')
    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 })
    t.teardown(() => client.disconnect())
    t.ok((await client.keys(`${redis.prefix}*`)).length > 0, 'the session is in Redis')
  })

  await t.test('the CA bundle handed to the build is nowhere in the image', async (t) => {
    t.notMatch(JSON.stringify(inspected.Config?.Env ?? []), /NODE_EXTRA_CA_CERTS|npm-ca/)
    const history = check(
      await podman(['history', '--no-trunc', '--format', '{{.CreatedBy}}', tag]),
      'history',
    )
    t.notMatch(history, /npm-ca|NODE_EXTRA_CA_CERTS/, 'no step of the runtime stage names it')
    const lines = hostOnlyCertificateLines()
    t.comment(`${lines.length} certificate(s) in the build's CA bundle that neither Node nor Debian ship`)
    const needles = [...lines, 'run/secrets/npm-ca'].map((s) => Buffer.from(s))
    const longest = Math.max(...needles.map((n) => n.length))
    const found = new Set<string>()
    let tail = Buffer.alloc(0)
    const bytes = await exportFilesystem(name, (chunk) => {
      const window = Buffer.concat([tail, chunk])
      for (const needle of needles) if (window.includes(needle)) found.add(needle.toString())
      tail = window.subarray(Math.max(0, window.length - longest + 1))
    })
    t.ok(bytes > 50e6, `scanned the whole filesystem (${(bytes / 1e6).toFixed(0)} MB)`)
    t.same([...found], [], 'neither the certificates nor the secret mount')
  })

  await t.test('SIGTERM lets the request in flight finish and exits 0', async (t) => {
    // The config above leaves server.drainTimeout at its default.
    const drainMs = parseDuration(DEFAULTS.drainTimeout)
    const slow = fetch(`${gateway}/api/public/work?delayMs=1500`)
    await pollUntil(async () => upstream.requests.some((r) => r.path.startsWith('/api/public/work')))
    const signalled = performance.now()
    check(await podman(['kill', '--signal', 'TERM', name]), 'podman kill')
    const response = await slow
    t.equal(response.status, 200, 'the request in flight finished')
    // A PID 1 that is not node (a shell form CMD) would not pass SIGTERM
    // on, and the container would run until podman's own kill.
    const deadline = new Promise<string>((resolve) =>
      setTimeout(resolve, drainMs + 5_000, 'still running').unref(),
    )
    t.equal(await Promise.race([exited, deadline]), '0', 'exit code 0')
    const stopped = performance.now() - signalled
    t.ok(stopped < drainMs, `stopped ${stopped.toFixed(0)} ms after SIGTERM, within the drain timeout`)
    const output = await logs()
    t.match(output, /shutting down: draining requests in flight/)
    t.notMatch(output, /\n\s+at /, 'no stack trace')
    for (const secret of [CLIENT_SECRET, SESSION_SECRET]) t.notOk(output.includes(secret), 'no secret logged')
  })
})

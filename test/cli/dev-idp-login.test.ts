/**
 * The first hour: a new user starts `gatehouse dev-idp` with their own
 * client, pastes what it prints into a fresh config, starts Gatehouse on
 * it and signs in. Nothing here knows the dev IdP's secret or issuer but
 * what the command printed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { type EchoUpstream, startEchoUpstream } from '../../dev/upstream.js'
import { loadConfig } from '../../src/config/load.js'
import { type RunningGateway, start } from '../../src/server/start.js'
import { typescriptFlags } from '../helpers/child-node.js'
import { devIdpCommand, type Printed } from '../helpers/dev-idp-command.js'
import { SESSION_SECRET, TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { onFreePort } from '../helpers/ports.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-dev-idp-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

/** How long the printed IdP's access tokens live, ms, as it says. */
function lifetimeOf(idp: Printed): number {
  const seconds = Number(/^ {2}access tokens live +(\d+) s$/m.exec(idp.stdout)?.[1])
  if (!Number.isInteger(seconds)) throw new Error(`no token lifetime in:\n${idp.stdout}`)
  return seconds * 1000
}

const fromSource = [process.execPath, ...typescriptFlags, join(root, 'src/cli/index.ts')]

/**
 * The dev IdP for a gateway on a port chosen first (its redirect URI names
 * it), a fresh config file made of the pasted block, and Gatehouse started
 * from that file; again on another port should the gateway's be taken.
 */
async function firstHour(
  t: Test,
  upstream: EchoUpstream,
  paste: (block: string) => string = (block) => block,
): Promise<{ idp: Printed; gateway: RunningGateway; clock: TestClock; log: Record<string, unknown>[] }> {
  const clock = new TestClock()
  const log: Record<string, unknown>[] = []
  return onFreePort(async (port) => {
    const base = `http://127.0.0.1:${port}`
    const idp = await devIdpCommand(fromSource, [
      '--client-id',
      'my-spa',
      '--redirect-uri',
      `${base}/auth/callback`,
      '--port',
      '0',
    ])
    const file = join(dir, `routes-${port}.yaml`)
    writeFileSync(
      file,
      `server: { host: 127.0.0.1, port: ${port}, publicUrl: "${base}" }
${paste(idp.block)}
session: { secret: "\${SESSION_SECRET}" }
metrics: { port: 0 }
routes:
  - { path: /api/orders, upstream: "${upstream.url}", timeout: 5s }
`,
    )
    try {
      const config = loadConfig(file, { OIDC_CLIENT_SECRET: idp.secret, SESSION_SECRET })
      const gateway = await start(config, {
        handleSignals: false,
        now: clock.now,
        logStream: { write: (line: string) => void log.push(JSON.parse(line)) },
      })
      t.teardown(async () => {
        await gateway.close()
        await idp.stop()
      })
      await gateway.app.gatehouse.whenDiscovered()
      return { idp, gateway, clock, log }
    } catch (err) {
      await idp.stop()
      throw err
    }
  })
}

t.test('a fresh config from what dev-idp printed: sign in, call an API, refresh, stop', async (t) => {
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  const { idp, gateway, clock, log } = await firstHour(t, upstream)
  t.match(idp.stdout, /^gatehouse dev-idp: DEVELOPMENT ONLY\./, 'it says what it is, first')
  t.match(idp.issuer, /^http:\/\/127\.0\.0\.1:\d+$/, 'on loopback')
  t.match(
    idp.block,
    /authorizationParams: \{ prompt: consent \}/,
    'strict: prompt=consent for a refresh token',
  )
  t.ok(idp.secret.length >= 32, 'a secret to export')

  const base = `http://127.0.0.1:${new URL(gateway.url).port}`
  const { jar, callback, finalLocation } = await login(base, { user: 'newcomer' })
  t.equal(callback.status, 302, 'the callback signs the user in')
  t.equal(finalLocation, `${base}/`)
  const first = await apiCall(jar, `${base}/api/orders/1`)
  t.equal(first.status, 200, 'an API call with the user’s token')
  const token = upstream.requests.at(-1)?.authorization
  t.match(token, /^Bearer \S+$/)

  // Past the dev IdP's access tokens: the refresh token the pasted block asked for must work.
  clock.advance(lifetimeOf(idp) + 1_000)
  const later = await apiCall(jar, `${base}/api/orders/2`)
  t.equal(later.status, 200, 'still signed in after the access token expired')
  t.not(upstream.requests.at(-1)?.authorization, token, 'with a refreshed token')
  // The default tokens.refreshBefore (30 s, as routes.yaml writes it) against
  // the dev IdP's default lifetime: a first run that warns teaches a user to
  // read past the gateway's warnings.
  t.same(
    log.filter((l) => Number(l.level) >= 40),
    [],
    'no warning on the way, GATEHOUSE_TOKEN_LIFETIME_SHORT included',
  )

  await gateway.close()
  t.equal(await idp.stop(), 0, 'SIGTERM stops the dev IdP, exit 0')
})

t.test('the pasted prompt=consent is what keeps the session past one token lifetime', async (t) => {
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  const { idp, gateway, clock } = await firstHour(t, upstream, (block) =>
    block.replace(/^ {2}authorizationParams:.*\n/m, ''),
  )
  const base = `http://127.0.0.1:${new URL(gateway.url).port}`
  const { jar } = await login(base)
  t.equal((await apiCall(jar, `${base}/api/orders/1`)).status, 200)
  clock.advance(lifetimeOf(idp) + 1_000)
  t.equal((await apiCall(jar, `${base}/api/orders/2`)).status, 401, 'no refresh token: the session ends')
})

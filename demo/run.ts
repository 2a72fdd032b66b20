/**
 * `npm run demo`: a development IdP, a demo API and Gatehouse with the demo
 * SPA, all on loopback, from a fresh clone with no setup. Ctrl-C stops it.
 */
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { startDevIdp } from '../dev/idp.js'
import { startStaticServer } from '../dev/static.js'
import { startEchoUpstream } from '../dev/upstream.js'
import { ConfigError } from '../src/config/errors.js'
import { loadConfig } from '../src/config/load.js'
import { start } from '../src/server/start.js'

const port = Number(process.env.PORT ?? 3000)
const idpPort = Number(process.env.IDP_PORT ?? 4000)
const metricsPort = Number(process.env.METRICS_PORT ?? 9464)
const publicUrl = `http://localhost:${port}`
const clientSecret = randomBytes(24).toString('base64url')

/** A busy port is the one failure a first run is likely to meet: say how to pick another. */
function failed(err: unknown, variable: 'PORT' | 'IDP_PORT' | 'METRICS_PORT', busy: number): never {
  const { code, message } = err as NodeJS.ErrnoException
  console.error(
    code === 'EADDRINUSE'
      ? `demo: port ${busy} is in use; choose another with ${variable}, e.g. ${variable}=${busy + 10} npm run demo`
      : err instanceof ConfigError
        ? err.message
        : `demo: could not start: ${message}`,
  )
  process.exit(1)
}

const idp = await startDevIdp({
  profile: 'lenient',
  port: idpPort,
  // The gateway posts the logout (auth.endSession: post), as Keycloak accepts.
  endSessionPost: true,
  // Short-lived, so the SPA's calls run into a refresh within seconds of
  // each other; more than twice routes.demo.yaml's tokens.refreshBefore.
  accessTokenTtl: 20,
  clients: [
    {
      clientId: 'gatehouse-demo',
      clientSecret,
      redirectUris: [`${publicUrl}/auth/callback`],
      postLogoutRedirectUris: [`${publicUrl}/`],
    },
  ],
}).catch((err: unknown) => failed(err, 'IDP_PORT', idpPort))
const upstream = await startEchoUpstream({ describeToken: (token) => idp.describe(token) })
const frontend = await startStaticServer(fileURLToPath(new URL('./public/', import.meta.url)))

const env = {
  ...process.env,
  GATEHOUSE_PORT: String(port),
  DEMO_ISSUER: idp.issuer,
  DEMO_CLIENT_SECRET: clientSecret,
  DEMO_SESSION_SECRET: randomBytes(32).toString('base64url'),
  DEMO_UPSTREAM: upstream.url,
  DEMO_STATIC: frontend.url,
  DEMO_METRICS_PORT: String(metricsPort),
}
let gateway: Awaited<ReturnType<typeof start>>
try {
  const config = loadConfig(fileURLToPath(new URL('./routes.demo.yaml', import.meta.url)), env)
  gateway = await start(config, { handleSignals: false })
} catch (err) {
  await Promise.all([idp.close(), upstream.close(), frontend.close()])
  // Either listener can find its port taken: name the one that was.
  const metrics = (err as { port?: number }).port === metricsPort
  failed(err, metrics ? 'METRICS_PORT' : 'PORT', metrics ? metricsPort : port)
}

console.log(`
  Gatehouse demo
  ──────────────
  Open ${publicUrl} and sign in with any user name.

  IdP (development only — any user name signs in): ${idp.issuer}
  Demo API:                                        ${upstream.url}
  Press Ctrl-C to stop.
`)

let stopping = false
async function stop() {
  if (stopping) process.exit(1)
  stopping = true
  await gateway.close()
  await Promise.all([idp.close(), upstream.close(), frontend.close()])
  process.exit(0)
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { stringify } from 'yaml'
import { type DevIdp, type DevIdpOptions, startDevIdp } from '../../dev/idp.js'
import { type EchoUpstream, startEchoUpstream } from '../../dev/upstream.js'
import { loadConfigFile } from '../../src/config/load.js'
import type { ReloadResult } from '../../src/server/reload.js'
import { type RunningGateway, start } from '../../src/server/start.js'
import {
  CLIENT_ID,
  CLIENT_SECRET,
  type TestConfigInput,
  type TestProvider,
  type TestRoute,
  testConfigRaw,
} from './gateway.js'
import { onFreePorts } from './ports.js'

export type ProviderName = 'corp' | 'partner'

/** What a test chooses of one frontend: the providers it lists, and its routes. */
export interface FrontendChoice {
  /** `frontends[].identityProviders`; absent: every provider. */
  readonly identityProviders?: readonly ProviderName[]
  readonly routes: readonly TestRoute[]
  /** `frontends[].cookieName`; absent: the default, `<session.cookieName>-<name>`. */
  readonly cookieName?: string
}

/** Both frontends' choices, given the echo upstream's URL. */
export type FrontendChoices = (upstream: string) => {
  readonly staff: FrontendChoice
  readonly partners: FrontendChoice
}

export interface TwoFrontends {
  readonly corp: DevIdp
  readonly partner: DevIdp
  readonly upstream: EchoUpstream
  /** The staff frontend's origin, `http://127.0.0.1:<port>`. */
  readonly staff: string
  /** The partners frontend's origin, `http://localhost:<port>`. */
  readonly partners: string
  readonly running: RunningGateway
  /** Writes the config file with other frontends' choices, and reloads it. */
  reload(choices: FrontendChoices): Promise<ReloadResult>
}

/**
 * Two real dev IdPs, "corp" and "partner" (the same client id at both, and
 * the same user names), and a gateway started as the CLI starts it, from a
 * YAML file, with two frontends on one port: "staff" on host 127.0.0.1 and
 * "partners" on host localhost. Each IdP has both frontends' redirect URIs
 * registered, so only the gateway decides who signs in where. Closed when
 * `t` ends.
 */
export async function startTwoFrontends(
  t: Test,
  choices: FrontendChoices,
  options: {
    /** Each IdP's options beyond its client. */
    readonly idp?: (name: ProviderName) => Partial<Omit<DevIdpOptions, 'clients'>>
    /** Each provider's options beyond its name and issuer. */
    readonly provider?: (name: ProviderName) => Partial<TestProvider>
    readonly accessTokenTtl?: number
    /** The gateway's clock, epoch ms (`TestClock.now`). */
    readonly now?: () => number
    /** How often open WebSockets re-check their session, ms; default the gateway's. */
    readonly websocketRecheck?: number
    /** `tracing.enabled`; the exporter and sampler come from the environment. */
    readonly tracing?: boolean
    /**
     * The shared store, the sign-in rate limit, the log level and the
     * per-user bound (`session.store`, `session.keyPrefix`,
     * `auth.rateLimit.max`, `logging.level`, `session.maxPerUser`).
     */
    readonly config?: Pick<
      TestConfigInput,
      'store' | 'keyPrefix' | 'rateLimitMax' | 'logLevel' | 'maxPerUser'
    >
    /** Where the gateway's log lines go (`LogLines.stream`); default stdout. */
    readonly logStream?: { write(line: string): void }
  } = {},
): Promise<TwoFrontends> {
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-two-frontends-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'routes.yaml')
  const started = await onFreePorts(1, async ([port]) => {
    const staff = `http://127.0.0.1:${port}`
    const partners = `http://localhost:${port}`
    const idps: Partial<Record<ProviderName, DevIdp>> = {}
    const close = async () => {
      for (const idp of Object.values(idps)) await idp.close()
    }
    try {
      for (const name of ['corp', 'partner'] as const) {
        idps[name] = await startDevIdp({
          accessTokenTtl: options.accessTokenTtl ?? 60,
          ...options.idp?.(name),
          clients: [
            {
              clientId: CLIENT_ID,
              clientSecret: CLIENT_SECRET,
              redirectUris: [`${staff}/auth/callback/${name}`, `${partners}/auth/callback/${name}`],
              postLogoutRedirectUris: [`${staff}/`, `${partners}/`],
            },
          ],
        })
      }
      const { corp, partner } = idps as Record<ProviderName, DevIdp>
      const text = (choose: FrontendChoices) => {
        const chosen = choose(upstream.url)
        const frontend = (name: 'staff' | 'partners', host: string, publicUrl: string) => {
          const raw = testConfigRaw({ port: port!, issuer: '', routes: chosen[name].routes }) as {
            routes: unknown
          }
          const listed = chosen[name].identityProviders
          const cookieName = chosen[name].cookieName
          return {
            name,
            host,
            publicUrl,
            ...(cookieName === undefined ? {} : { cookieName }),
            ...(listed === undefined ? {} : { identityProviders: listed }),
            routes: raw.routes,
          }
        }
        const raw = testConfigRaw({
          port: port!,
          issuer: corp.issuer,
          routes: [],
          ...options.config,
          ...(options.tracing ? { tracing: { enabled: true } } : {}),
          identityProviders: [
            { name: 'corp', issuer: corp.issuer, ...options.provider?.('corp') },
            { name: 'partner', issuer: partner.issuer, ...options.provider?.('partner') },
          ],
        }) as { server: Record<string, unknown>; routes?: unknown }
        delete raw.server.publicUrl
        delete raw.routes
        return stringify({
          ...raw,
          frontends: [frontend('staff', '127.0.0.1', staff), frontend('partners', 'localhost', partners)],
        })
      }
      writeFileSync(file, text(choices))
      const { config, digest } = loadConfigFile(file, {})
      const running = await start(config, {
        handleSignals: false,
        configFile: file,
        configDigest: digest,
        env: {},
        watch: false,
        ...(options.now === undefined ? {} : { now: options.now }),
        ...(options.websocketRecheck === undefined ? {} : { websocketRecheck: options.websocketRecheck }),
        ...(options.logStream === undefined ? {} : { logStream: options.logStream }),
      })
      await running.app.gatehouse.whenDiscovered()
      const reload = (next: FrontendChoices) => {
        writeFileSync(file, text(next))
        return running.reload()
      }
      return { corp, partner, upstream, staff, partners, running, reload }
    } catch (err) {
      await close()
      throw err
    }
  })
  t.teardown(async () => {
    await started.running.close()
    await started.corp.close()
    await started.partner.close()
  })
  return started
}

import { once } from 'node:events'
import type { FastifyInstance } from 'fastify'
import { parseConfig } from '../../src/config/load.js'
import type { RawConfig } from '../../src/config/schema.js'
import type { GatehouseConfig, RouteConfig, WebSocketRoute } from '../../src/config/types.js'
import { buildGateway, type GatewayOptions } from '../../src/server/gateway.js'
import { RedisSessionStore } from '../../src/session/redis-store.js'

export const CLIENT_ID = 'gatehouse-test'
export const CLIENT_SECRET = 'test-client-secret-that-is-long-enough'
export const SESSION_SECRET = 'a-session-secret-of-at-least-32-characters!'

/** Listens on `port`, closing the app (its stores and timers) when the port is taken. */
export async function listenOn(app: FastifyInstance, port: number): Promise<void> {
  try {
    await app.listen({ host: '127.0.0.1', port })
  } catch (err) {
    await app.close()
    throw err
  }
}

/**
 * Resolves once the gateway's local session cache has heard its Redis go
 * away, so that the next session read asks Redis. A killed redis-server's
 * connections close at once, but the gateway may take a request that was
 * already on its way before it reads that close: until then the cache may
 * serve its copy, as it may for `maxStalenessMs` of a silent stall, by
 * design (redis-tracked-cache.ts). A test of what an outage answers waits
 * for this first, else on a loaded machine it reads a 200 from the copy.
 */
export async function cacheHeardStoreOutage(app: FastifyInstance): Promise<void> {
  const store = app.gatehouse.stores.sessions
  const cache = store instanceof RedisSessionStore ? store.cache : undefined
  if (cache?.armed) await once(cache, 'disarmed')
}

/**
 * A route as a test writes it: path and upstream, plus what the test sets.
 * Durations in milliseconds; `testConfig` passes it through the parser.
 */
export type TestRoute = Pick<RouteConfig, 'path' | 'upstream'> &
  Partial<Omit<RouteConfig, 'websocket' | 'tls'>> & {
    /** As the file has it: PEM items as `{ file }` or `{ pem }`. */
    readonly tls?: RawConfig['routes'][number]['tls']
    /** As the file has it: `true`, or some of the bounds (`pingInterval` in ms). */
    readonly websocket?: boolean | Partial<WebSocketRoute>
  }

/** A user route. The upstream timeout is 5 s, not 30 s: a hung test upstream fails fast. */
export function route(
  path: string,
  upstream: string,
  extra: Omit<TestRoute, 'path' | 'upstream'> = {},
): TestRoute {
  return { path, upstream, timeout: 5_000, ...extra }
}

export interface TestConfigInput {
  readonly port: number
  readonly tracing?: { readonly enabled?: boolean; readonly trustIncoming?: boolean }
  /** Defaults to `http://127.0.0.1:<port>`; replicas behind one origin share the first's. */
  readonly publicUrl?: string
  readonly issuer: string
  readonly routes: readonly TestRoute[]
  readonly store?: string
  readonly refreshBefore?: number
  readonly refreshWait?: number
  /** `tokens.retryCooldown`, ms. */
  readonly retryCooldown?: number
  readonly unavailableLimit?: number
  /** `tokens.maxSize`, as the file writes it: `64kb`. */
  readonly maxTokenSize?: string
  readonly idpTimeout?: number
  readonly secrets?: readonly string[]
  readonly idleTimeout?: number
  readonly absoluteTimeout?: number
  readonly keyPrefix?: string
  readonly sameSite?: GatehouseConfig['session']['sameSite']
  readonly cookieName?: string
  readonly maxSessions?: number
  /** `session.maxPerUser`: sessions per user and frontend. */
  readonly maxPerUser?: number
  /** `server.maxWebSockets`: sockets per instance. */
  readonly maxWebSockets?: number
  /** `server.sendTimeout`, ms. */
  readonly sendTimeout?: number
  /** `session.maxWebSockets`: sockets per session. */
  readonly sessionMaxWebSockets?: number
  readonly localCache?: number
  /** `session.storeTimeout`, ms. */
  readonly storeTimeout?: number
  readonly logLevel?: GatehouseConfig['logging']['level']
  readonly accessLog?: boolean
  readonly rateLimitMax?: number
  readonly trustProxy?: boolean
  /**
   * Overrides of the `oidc` block, durations in milliseconds. The default
   * `authorizationParams` is `{ prompt: 'consent' }`: the test IdP is strict
   * (OIDC Core §11), so that is what a working deployment against it carries.
   */
  readonly oidc?: Partial<Omit<GatehouseConfig['oidc'], 'tls'>> & { readonly tls?: RawOidcTls }
  /**
   * `identityProviders:` instead of `oidc:`: each entry has the test
   * client's id, secret and strict-OP parameters unless it says otherwise,
   * and the `oidc` overrides above.
   */
  readonly identityProviders?: readonly TestProvider[]
  readonly claims?: readonly string[]
  readonly loginParams?: readonly string[]
  readonly endSession?: GatehouseConfig['auth']['endSession']
}

type RawOidcTls = NonNullable<RawConfig['oidc']>['tls']

/** One entry of `TestConfigInput.identityProviders`. */
export type TestProvider = Partial<Omit<GatehouseConfig['oidc'], 'tls'>> & {
  readonly name: string
  readonly issuer: string
  readonly tls?: RawOidcTls
}

/** What a strict OP needs before it honours offline_access (OIDC Core §11). */
export const STRICT_OP_PARAMS: Readonly<Record<string, string>> = { prompt: 'consent' }

const ms = (value: number | undefined) => (value === undefined ? undefined : `${value}ms`)

/** Drops the keys whose value is `undefined`, as a YAML file would not have them. */
function present(object: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined))
}

/**
 * The config file a user would write for a gateway on loopback, resolved by
 * the real parser: its defaults, its validation, the frozen result. Beyond
 * what the input sets, the tests' choices are a short IdP timeout (3 s, so
 * fault tests end quickly), refreshes 5 s before expiry, a rate limit no
 * test reaches by accident, and metrics on a port of their own (0).
 */
export function testConfig(input: TestConfigInput): GatehouseConfig {
  return parseConfig(JSON.stringify(testConfigRaw(input)), 'test config', {})
}

/** What `testConfig` parses: the file's options before the parser's defaults, to write as a file. */
export function testConfigRaw(input: TestConfigInput): Record<string, unknown> {
  const { timeout, connectTimeout, lateAnswerWait, clientKey, ...oidc } = input.oidc ?? {}
  const raw = {
    server: present({
      host: '127.0.0.1',
      port: input.port,
      publicUrl: input.publicUrl ?? `http://127.0.0.1:${input.port}`,
      trustProxy: input.trustProxy,
      maxWebSockets: input.maxWebSockets,
      sendTimeout: ms(input.sendTimeout),
    }),
    ...(input.identityProviders
      ? {
          identityProviders: input.identityProviders.map(
            ({
              timeout: ownTimeout,
              connectTimeout: ownConnect,
              lateAnswerWait: ownLate,
              clientKey: ownKey,
              ...provider
            }) =>
              present({
                clientId: CLIENT_ID,
                clientSecret: CLIENT_SECRET,
                authorizationParams: STRICT_OP_PARAMS,
                ...oidc,
                ...provider,
                timeout: ms(ownTimeout ?? timeout ?? input.idpTimeout ?? 3_000),
                connectTimeout: ms(ownConnect ?? connectTimeout ?? 1_000),
                lateAnswerWait: ms(ownLate ?? lateAnswerWait),
                clientKey: ownKey ?? clientKey,
              }),
          ),
        }
      : {
          oidc: present({
            issuer: input.issuer,
            clientId: CLIENT_ID,
            clientSecret: CLIENT_SECRET,
            authorizationParams: STRICT_OP_PARAMS,
            ...oidc,
            timeout: ms(timeout ?? input.idpTimeout ?? 3_000),
            connectTimeout: ms(connectTimeout ?? 1_000),
            lateAnswerWait: ms(lateAnswerWait),
            clientKey,
          }),
        }),
    session: present({
      secrets: input.secrets ?? [SESSION_SECRET],
      store: input.store,
      idleTimeout: ms(input.idleTimeout),
      absoluteTimeout: ms(input.absoluteTimeout),
      keyPrefix: input.keyPrefix,
      sameSite: input.sameSite,
      cookieName: input.cookieName,
      maxSessions: input.maxSessions,
      maxPerUser: input.maxPerUser,
      maxWebSockets: input.sessionMaxWebSockets,
      localCache: input.localCache,
      storeTimeout: ms(input.storeTimeout),
      claims: input.claims,
    }),
    tokens: present({
      refreshBefore: ms(input.refreshBefore ?? 5_000),
      refreshWait: ms(input.refreshWait),
      retryCooldown: ms(input.retryCooldown),
      unavailableLimit: ms(input.unavailableLimit),
      maxSize: input.maxTokenSize,
    }),
    auth: present({
      loginParams: input.loginParams,
      endSession: input.endSession,
      rateLimit: { max: input.rateLimitMax ?? 1_000 },
    }),
    logging: present({ level: input.logLevel ?? 'silent', accessLog: input.accessLog }),
    metrics: { port: 0 },
    ...(input.tracing ? { tracing: input.tracing } : {}),
    routes: input.routes.map((r) =>
      present({
        ...r,
        timeout: ms(r.timeout),
        bodyLimit: r.bodyLimit,
        websocket:
          typeof r.websocket === 'object'
            ? present({ ...r.websocket, pingInterval: ms(r.websocket.pingInterval) })
            : r.websocket,
      }),
    ),
  }
  return raw
}

export interface TestGateway {
  readonly app: FastifyInstance
  readonly url: string
  close(): Promise<void>
}

/**
 * Builds, listens on the config's port and waits for discovery, unless
 * `awaitDiscovery` is false (a test of a discovery that cannot succeed).
 */
export async function startGateway(
  config: GatehouseConfig,
  options: GatewayOptions = {},
  { awaitDiscovery = true }: { readonly awaitDiscovery?: boolean } = {},
): Promise<TestGateway> {
  const app = await buildGateway(config, options)
  await listenOn(app, config.server.port)
  if (awaitDiscovery) await app.gatehouse.whenDiscovered()
  let closing: Promise<void> | undefined
  // Idempotent: a test may close the gateway early and its stack's teardown again.
  const close = () => {
    closing ??= app.close()
    return closing
  }
  return { app, url: config.server.publicUrl, close }
}

/**
 * A clock tests move by hand, so token expiry needs no sleeping. It runs
 * with the real one too, unless frozen.
 */
export class TestClock {
  #offset = 0
  /** The real time it was frozen at, once `freeze` is called. */
  #frozenAt: number | undefined
  readonly now = () => (this.#frozenAt ?? Date.now()) + this.#offset
  advance(ms: number): void {
    this.#offset += ms
  }
  /**
   * From now on the clock moves only by `advance`. For a test that moves it
   * to just below a threshold, or reads a countdown to the second: a loaded
   * machine's seconds between two steps would otherwise cross it.
   */
  freeze(): this {
    this.#frozenAt ??= Date.now()
    return this
  }
}

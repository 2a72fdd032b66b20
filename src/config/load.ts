import { dirname } from 'node:path'
import type { Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { readClientKey } from './client-key.js'
import { configDigest } from './digest.js'
import { parseDuration, parseSize } from './duration.js'
import { ConfigError, type ConfigProblem } from './errors.js'
import { resolveExchange } from './exchange.js'
import { checkFapi2Certificates, fapi2KeyAlgorithm } from './fapi2.js'
import { frontendBasePath, frontendCookieName, routeLists, trimPrefix } from './frontend-rules.js'
import { formatPath, type Path, unescapePointer } from './option-path.js'
import { dedupe, describe, intoMapping } from './problems.js'
import { clientTokenProvider, type RawProvider, rawProviders } from './providers.js'
import { configText, readConfigFileSync } from './read.js'
import { ConfigSchema, HTTP_METHODS, type RawConfig, WebSocketSchema } from './schema.js'
import { checkSemantics, checkWarnings } from './semantics.js'
import { parseStore, type StoreConfig } from './store-url.js'
import { readTls } from './tls-material.js'
import { hideSecrets, readConfigTree } from './tree.js'
import type {
  ClientKey,
  FrontendConfig,
  GatehouseConfig,
  HttpMethod,
  IdentityProviderConfig,
  RouteConfig,
  TlsMaterial,
  WebSocketRoute,
} from './types.js'

export interface LoadOptions {
  /** Hears what is valid but risky (an anonymous client route), located like a problem. */
  readonly onWarning?: (warning: ConfigProblem) => void
  /**
   * `env` is that of a gateway already running (a reload): a variable it
   * lacks is told to need a restart, as setting it reaches a new process only.
   */
  readonly running?: boolean
}

/**
 * Reads, checks and resolves a config file. Throws `ConfigError` listing
 * every problem; a file that is not a regular file, or is larger than
 * `MAX_CONFIG_FILE_BYTES`, is one (read.ts).
 */
export function loadConfig(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  options: LoadOptions = {},
): GatehouseConfig {
  return loadConfigFile(file, env, options).config
}

/** A config as loaded, and which bytes it was loaded from. */
export interface LoadedConfig {
  readonly config: GatehouseConfig
  /** The `configDigest` of the bytes read: a watch started later compares the file with it. */
  readonly digest: string
}

/**
 * `loadConfig`, also naming the bytes it read. The file may change between
 * this read and the start of its watch (a ConfigMap update while the
 * gateway starts); compared with what the watch first finds, it is seen.
 */
export function loadConfigFile(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  options: LoadOptions = {},
): LoadedConfig {
  const bytes = readConfigFileSync(file)
  return { config: parseConfig(configText(bytes, file), file, env, options), digest: configDigest(bytes) }
}

/** Checks and resolves config text (YAML, or JSON, which is YAML). */
export function parseConfig(
  text: string,
  source: string,
  env: NodeJS.ProcessEnv = process.env,
  options: LoadOptions = {},
): GatehouseConfig {
  const {
    lineOf,
    tree: withDefaults,
    unset: unsetProblems,
    misshapen,
    leftOut,
    secrets,
  } = readConfigTree(text, source, env, options.running)
  const problems: ConfigProblem[] = [...unsetProblems, ...misshapen]
  const unset = problems.map((p) => p.path)
  for (const error of [...Value.Errors(ConfigSchema, withDefaults)].flatMap(intoMapping)) {
    const path = error.path.split('/').slice(1).map(unescapePointer)
    const at = formatPath(path)
    // Below an unset variable the value is not what was written (`{ pem: "${VAR}" }`
    // then matches no form of its option): the variable is the problem to name.
    // So is a misshapen option, left out (a required one is then missing).
    if (unset.some((u) => u === at || u.startsWith(`${at}.`) || u.startsWith(`${at}[`))) continue
    problems.push({ path: at, line: lineOf(path), message: describe(error) })
  }
  const config = withDefaults as unknown as RawConfig
  const findings: ReturnType<typeof checkSemantics> = []
  try {
    // A misshapen option without a default is left out, and the cross-field
    // rules would read that as a choice (no `identityProviders`: "oidc is
    // required"); they wait until it is fixed. One with a default has
    // taken it, which they can read.
    if (!leftOut) checkSemantics(config, findings)
  } catch {
    // The schema already failed in a way the cross-field rules cannot read
    // past; its problems are the ones to fix first.
  }
  for (const p of findings)
    problems.push({ path: formatPath(p.path), line: lineOf(p.path), message: p.message })
  const providers = problems.length === 0 ? rawProviders(config) : []
  const clientKeys = new Map<string, ClientKey>()
  for (const { path, name, oidc } of providers) {
    if (!oidc.clientKey || oidc.clientAuth !== 'private_key_jwt') continue
    const key = readClientKey(oidc.clientKey, dirname(source), [...path, 'clientKey'])
    const fitted = 'jwk' in key && oidc.profile === 'fapi2' ? fapi2Key(key, [...path, 'clientKey']) : key
    if ('jwk' in fitted) clientKeys.set(name, fitted)
    else problems.push({ path: formatPath(fitted.path), line: lineOf(fitted.path), message: fitted.message })
  }
  const tls =
    problems.length === 0
      ? readAllTls(config, providers, dirname(source))
      : { materials: new Map(), problems: [] }
  for (const p of tls.problems)
    problems.push({ path: formatPath(p.path), line: lineOf(p.path), message: p.message })
  if (tls.problems.length === 0) {
    const materialAt = (path: Path) => tls.materials.get(formatPath(path))
    for (const provider of providers) {
      for (const p of checkFapi2Certificates(config, provider, materialAt))
        problems.push({ path: formatPath(p.path), line: lineOf(p.path), message: p.message })
    }
  }
  if (problems.length > 0) {
    throw new ConfigError(
      source,
      hideSecrets(dedupe(problems), secrets).sort((a, b) => (a.line ?? 0) - (b.line ?? 0)),
    )
  }
  const warnings = checkWarnings(config).map((w) => ({
    path: formatPath(w.path),
    line: lineOf(w.path),
    message: w.message,
  }))
  for (const w of hideSecrets(warnings, secrets)) options.onWarning?.(w)
  return deepFreeze(resolve(config, providers, clientKeys, tls.materials))
}

/** The key with its FAPI 2.0 algorithm (fapi2.ts), or why it has none. */
function fapi2Key(key: ClientKey, path: Path): ClientKey | { path: Path; message: string } {
  const n = key.jwk.n
  const bits = typeof n === 'string' ? Buffer.from(n, 'base64url').length * 8 : undefined
  const alg = fapi2KeyAlgorithm(String(key.jwk.alg), bits)
  return typeof alg === 'string' ? { jwk: { ...key.jwk, alg } } : { path, message: alg.problem }
}

/** Each provider's `tls` and every `routes[].tls`, read and checked (tls-material.ts); keyed by option path. */
function readAllTls(config: RawConfig, providers: readonly RawProvider[], baseDir: string) {
  const materials = new Map<string, TlsMaterial>()
  const problems: { path: Path; message: string }[] = []
  const sections: [Path, RawConfig['routes'][number]['tls']][] = [
    ...providers.map((p): [Path, RawConfig['routes'][number]['tls']] => [[...p.path, 'tls'], p.oidc.tls]),
    ...routeLists(config).flatMap((list) =>
      list.routes.map((r, i): [Path, RawConfig['routes'][number]['tls']] => [[...list.at, i, 'tls'], r.tls]),
    ),
  ]
  for (const [path, raw] of sections) {
    if (raw === undefined) continue
    const read = readTls(raw, path, baseDir)
    if ('material' in read) materials.set(formatPath(path), read.material)
    else problems.push(...read.problems)
  }
  return { materials, problems }
}

function resolve(
  config: RawConfig,
  rawProviders: readonly RawProvider[],
  clientKeys: ReadonlyMap<string, ClientKey>,
  tls: ReadonlyMap<string, TlsMaterial>,
): GatehouseConfig {
  // Without it, frontends are required, and the first one's origin stands for the instance.
  const publicUrl = new URL(config.server.publicUrl ?? config.frontends![0]!.publicUrl)
  const secure = publicUrl.protocol === 'https:'
  const providers = rawProviders.map((p) =>
    resolveProvider(p, clientKeys.get(p.name), tls.get(formatPath([...p.path, 'tls']))),
  )
  // `frontendProviders`: the frontend's `identityProviders`, if it lists some.
  const resolveRoute =
    (at: Path, frontendProviders?: readonly string[]) =>
    (r: RawConfig['routes'][number], i: number): RouteConfig => {
      // The gateway's own token is the frontend's as much as a sign-in is:
      // from its first provider, as its /login without ?idp= is.
      const clientProvider = r.identityProviders?.[0] ?? frontendProviders?.[0]
      const path = trimSlash(r.path)
      const routeTls = tls.get(formatPath([...at, i, 'tls']))
      return {
        path,
        upstream: r.upstream.replace(/\/+$/, ''),
        rewritePath: r.rewritePath === undefined ? path : trimSlash(r.rewritePath),
        token: r.token,
        scopes: r.scopes,
        ...(r.resource === undefined ? {} : { resource: r.resource }),
        // A session keeps the binding it signed in with (guard.ts): its key,
        // if it has one, binds its tokens on every route that does not opt
        // out, whatever `dpop` says now. The gateway's own token is bound
        // while the provider it comes from binds its tokens.
        dpop:
          r.token !== 'none' &&
          (r.dpop ?? true) &&
          (r.token !== 'client' ||
            clientTokenProvider(rawProviders, r.identityProviders, frontendProviders)?.oidc.dpop === true),
        retryOnInvalidToken: r.retryOnInvalidToken,
        methods: routeMethods(r.methods),
        csrf: r.csrf,
        anonymous: r.anonymous ?? false,
        timeout: parseDuration(r.timeout),
        bodyLimit: parseSize(r.bodyLimit),
        websocket: resolveWebSocket(r.websocket),
        allowClearSiteData: r.allowClearSiteData,
        allowNetworkErrorLogging: r.allowNetworkErrorLogging,
        allowStrictTransportSecurity: r.allowStrictTransportSecurity,
        allowInternalRedirect: r.allowInternalRedirect,
        allowServiceWorkerScope: r.allowServiceWorkerScope,
        passHeaders: r.passHeaders.map((name) => name.toLowerCase()),
        ...(routeTls === undefined ? {} : { tls: routeTls }),
        ...(r.identityProviders === undefined ? {} : { identityProviders: [...r.identityProviders] }),
        ...(r.token === 'client' && clientProvider !== undefined
          ? { clientIdentityProvider: clientProvider }
          : {}),
        ...(r.token === 'exchange' && r.exchange ? { exchange: resolveExchange(r.exchange) } : {}),
      }
    }
  const cookieName = (name: string, secure: boolean) =>
    // __Host-Http- (draft-ietf-httpbis-layered-cookies; Chromium 140+):
    // as __Host-, and no script may set the cookie, so XSS cannot plant a
    // session of the attacker's. Browsers without it read it as __Host-.
    secure ? `__Host-Http-${name}` : name
  const frontends: FrontendConfig[] = config.frontends?.map((f, i) => {
    const origin = new URL(f.publicUrl)
    const pathPrefix = trimPrefix(f.pathPrefix)
    return {
      name: f.name,
      host: f.host?.toLowerCase(),
      pathPrefix,
      publicUrl: origin.origin,
      secure: origin.protocol === 'https:',
      cookieName: cookieName(frontendCookieName(config, f), origin.protocol === 'https:'),
      auth: { basePath: frontendBasePath(config, f) },
      home: `${pathPrefix}/`,
      identityProviders: f.identityProviders,
      routes: f.routes.map(resolveRoute(['frontends', i, 'routes'], f.identityProviders)),
    }
  }) ?? [
    {
      name: '',
      host: undefined,
      pathPrefix: '',
      publicUrl: publicUrl.origin,
      secure,
      cookieName: cookieName(config.session.cookieName, secure),
      auth: { basePath: trimSlash(config.auth.basePath) },
      home: '/',
      identityProviders: undefined,
      routes: config.routes.map(resolveRoute(['routes'])),
    },
  ]
  return {
    server: {
      host: config.server.host,
      port: config.server.port,
      publicUrl: publicUrl.origin,
      secure,
      trustProxy: config.server.trustProxy,
      headersTimeout: parseDuration(config.server.headersTimeout),
      requestTimeout: parseDuration(config.server.requestTimeout),
      keepAliveTimeout: parseDuration(config.server.keepAliveTimeout),
      sendTimeout: parseDuration(config.server.sendTimeout),
      drainTimeout: parseDuration(config.server.drainTimeout),
      maxHeaderSize: parseSize(config.server.maxHeaderSize),
      maxWebSockets: config.server.maxWebSockets,
    },
    oidc: providers[0]!,
    identityProviders: providers,
    session: {
      // An empty secret after the first opens nothing and is left out: it lets a
      // deployment keep `${SESSION_SECRET_SECOND:-}` in the list between
      // rotations, set only while one is under way (docs/deployment.md).
      secrets: config.session.secrets?.filter((s, i) => i === 0 || s !== '') ?? [config.session.secret!],
      store: parseStore(config.session.store) as StoreConfig,
      idleTimeout: parseDuration(config.session.idleTimeout),
      absoluteTimeout: parseDuration(config.session.absoluteTimeout),
      cookieName: cookieName(config.session.cookieName, secure),
      sameSite: config.session.sameSite,
      keyPrefix: config.session.keyPrefix,
      maxSessions: config.session.maxSessions,
      maxPerUser: config.session.maxPerUser,
      maxWebSockets: config.session.maxWebSockets,
      localCache: config.session.localCache,
      storeTimeout: parseDuration(config.session.storeTimeout),
      claims: config.session.claims,
    },
    tokens: {
      refreshBefore: parseDuration(config.tokens.refreshBefore),
      refreshWait: parseDuration(config.tokens.refreshWait),
      retryCooldown: parseDuration(config.tokens.retryCooldown),
      unavailableLimit: parseDuration(config.tokens.unavailableLimit),
      maxSize: parseSize(config.tokens.maxSize),
    },
    auth: {
      basePath: trimSlash(config.auth.basePath),
      loginParams: config.auth.loginParams,
      endSession: config.auth.endSession,
      rateLimit: { max: config.auth.rateLimit.max, window: parseDuration(config.auth.rateLimit.window) },
    },
    csrf: { header: config.csrf.header.toLowerCase() },
    logging: {
      level: config.logging.level as GatehouseConfig['logging']['level'],
      accessLog: config.logging.accessLog,
    },
    metrics: { enabled: config.metrics.enabled, host: config.metrics.host, port: config.metrics.port },
    tracing: { enabled: config.tracing.enabled, trustIncoming: config.tracing.trustIncoming },
    routes: frontends.flatMap((f) => f.routes),
    frontends,
  }
}

/** One provider's options, resolved; its `clientKey` and `tls` as read at load. */
function resolveProvider(
  provider: RawProvider,
  clientKey: ClientKey | undefined,
  tls: TlsMaterial | undefined,
): IdentityProviderConfig {
  const { oidc } = provider
  return {
    name: provider.name,
    option: formatPath(provider.path),
    callbackPath: provider.path[0] === 'oidc' ? '/callback' : `/callback/${provider.name}`,
    issuer: oidc.issuer,
    clientId: oidc.clientId,
    clientSecret: oidc.clientAuth.startsWith('client_secret_') ? oidc.clientSecret : undefined,
    clientAuth: oidc.clientAuth,
    clientKey,
    tls,
    profile: oidc.profile,
    scopes: oidc.scopes,
    authorizationParams: { ...oidc.authorizationParams },
    userinfo: oidc.userinfo,
    // FAPI 2.0 §5.3.2.2: PAR always (`off` is refused by checkFapi2).
    par: oidc.profile === 'fapi2' ? 'required' : oidc.par,
    dpop: oidc.dpop,
    dpopAlgorithm: oidc.dpopAlgorithm,
    timeout: parseDuration(oidc.timeout),
    connectTimeout: parseDuration(oidc.connectTimeout),
    lateAnswerWait: parseDuration(oidc.lateAnswerWait),
  }
}

/** `true` is the object with every default; the schema has filled in those an object left out. */
function resolveWebSocket(raw: RawConfig['routes'][number]['websocket']): WebSocketRoute | false {
  if (raw === false) return false
  const bounds = raw === true ? (Value.Default(WebSocketSchema, {}) as Static<typeof WebSocketSchema>) : raw
  return {
    maxMessage: parseSize(bounds.maxMessage),
    compression: bounds.compression,
    pingInterval: parseDuration(bounds.pingInterval),
  }
}

/** RFC 9110 §9.3.2: HEAD is GET without the body, so a route that serves one serves both. */
function routeMethods(listed: readonly HttpMethod[] | undefined): HttpMethod[] {
  if (listed === undefined) return [...HTTP_METHODS]
  return HTTP_METHODS.filter((m) => listed.includes(m) || (m === 'HEAD' && listed.includes('GET')))
}

function trimSlash(path: string): string {
  return path.length > 1 ? path.replace(/\/+$/, '') : path
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v)
    Object.freeze(value)
  }
  return value
}

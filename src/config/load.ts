import { readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import type { Static, TSchema } from '@sinclair/typebox'
import { Value, type ValueError } from '@sinclair/typebox/value'
import { LineCounter, parseDocument } from 'yaml'
import { readClientKey } from './client-key.js'
import { configDigest } from './digest.js'
import { keepNumberText, lineLocator } from './document.js'
import { parseDuration, parseSize } from './duration.js'
import { interpolate } from './env.js'
import { ConfigError, type ConfigProblem } from './errors.js'
import { resolveExchange } from './exchange.js'
import { checkFapi2Certificates, fapi2KeyAlgorithm } from './fapi2.js'
import { frontendBasePath, frontendCookieName, routeLists, trimPrefix } from './frontend-rules.js'
import { type RawProvider, rawProviders } from './providers.js'
import { ConfigSchema, HTTP_METHODS, type RawConfig, WebSocketSchema } from './schema.js'
import { checkSemantics, checkWarnings, servedProviders } from './semantics.js'
import { parseStore, type StoreConfig } from './store-url.js'
import { closest } from './suggest.js'
import { readTls } from './tls-material.js'
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

type Path = (string | number)[]

export interface LoadOptions {
  /** Hears what is valid but risky (an anonymous client route), located like a problem. */
  readonly onWarning?: (warning: ConfigProblem) => void
}

/** Reads, checks and resolves a config file. Throws `ConfigError` listing every problem. */
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
  let bytes: Buffer
  try {
    bytes = readFileSync(file)
  } catch (err) {
    const reason =
      (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message
    throw new ConfigError(file, [{ path: '', message: `cannot read the config file: ${reason}` }])
  }
  return { config: parseConfig(bytes.toString('utf8'), file, env, options), digest: configDigest(bytes) }
}

/** Checks and resolves config text (YAML, or JSON, which is YAML). */
export function parseConfig(
  text: string,
  source: string,
  env: NodeJS.ProcessEnv = process.env,
  options: LoadOptions = {},
): GatehouseConfig {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true })
  if (doc.errors.length > 0) throw new ConfigError(source, syntaxProblems(doc.errors, text))
  const lineOf = lineLocator(doc, lineCounter)
  keepNumberText(doc)

  const problems: ConfigProblem[] = []
  const unset: string[] = []
  const raw = interpolateTree(doc.toJS({ maxAliasCount: 100 }), [], env, (path, message) => {
    unset.push(formatPath(path))
    problems.push({ path: formatPath(path), line: lineOf(path), message })
  })
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(source, [
      ...problems,
      { path: '', line: 1, message: 'the file must be a mapping of options' },
    ])
  }

  // Convert: `port: ${PORT}` arrives as text and must count as the number
  // it would have been had it been typed in, wherever the schema says so.
  const withDefaults = Value.Convert(
    ConfigSchema,
    Value.Default(ConfigSchema, structuredClone(raw)),
  ) as unknown
  for (const error of [...Value.Errors(ConfigSchema, withDefaults)].flatMap(intoMapping)) {
    const path = error.path.split('/').slice(1).map(unescapePointer)
    const at = formatPath(path)
    // Below an unset variable the value is not what was written (`{ pem: "${VAR}" }`
    // then matches no form of its option): the variable is the problem to name.
    if (unset.some((u) => u === at || u.startsWith(`${at}.`) || u.startsWith(`${at}[`))) continue
    problems.push({ path: at, line: lineOf(path), message: describe(error) })
  }
  const config = withDefaults as RawConfig
  const findings: ReturnType<typeof checkSemantics> = []
  try {
    checkSemantics(config, findings)
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
      dedupe(problems).sort((a, b) => (a.line ?? 0) - (b.line ?? 0)),
    )
  }
  for (const w of checkWarnings(config))
    options.onWarning?.({ path: formatPath(w.path), line: lineOf(w.path), message: w.message })
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

function interpolateTree(
  value: unknown,
  path: Path,
  env: NodeJS.ProcessEnv,
  report: (path: Path, message: string) => void,
): unknown {
  // A self-referencing alias (`&a [*a]`) is a cycle; no real config nests this deep.
  if (path.length > 32) {
    report(path.slice(0, 1), 'nests too deeply or refers to itself')
    return null
  }
  if (typeof value === 'string') {
    const { value: out, missing } = interpolate(value, env)
    for (const name of missing) {
      // A default written in the file would put the secret in the file.
      const hint = isSecret(path, name)
        ? 'a secret: set it in the environment'
        : `or use \${${name}:-default} for a default`
      report(path, `environment variable ${name} is not set (${hint})`)
    }
    return out
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateTree(v, [...path, i], env, report))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = interpolateTree(v, [...path, k], env, report)
    return out
  }
  return value
}

const SECRET_OPTION = /^((oidc|identityProviders\[\d+\])\.clientSecret|session\.secrets?(\[\d+\])?)$/
const SECRET_NAME = /SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|CREDENTIAL|(^|_)KEY($|_)/i

function isSecret(path: Path, name: string): boolean {
  return SECRET_OPTION.test(formatPath(path)) || SECRET_NAME.test(name)
}

interface YamlError {
  readonly message: string
  readonly linePos?: readonly [{ readonly line: number }, ...unknown[]] | undefined
}

/**
 * YAML's syntax errors, one line each. An unquoted `${VAR}` inside `[...]` or
 * `{...}` is the usual cause in a config file: YAML reads its `{` as a nested
 * flow mapping and reports a cascade of errors, often on the lines below too,
 * that never names it. When it is there, it alone is reported.
 */
function syntaxProblems(errors: readonly YamlError[], text: string): ConfigProblem[] {
  const lines = text.split(/\r?\n/)
  const hinted = new Set<number>()
  const problems: ConfigProblem[] = []
  for (const e of errors) {
    const line = e.linePos?.[0].line
    const reason = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')
    const variable = line === undefined ? undefined : unquotedFlowVariable(lines[line - 1] ?? '')
    if (variable === undefined) {
      problems.push({ path: '', line, message: `YAML syntax error: ${reason}` })
    } else if (!hinted.has(line!)) {
      hinted.add(line!)
      problems.push({
        path: '',
        line,
        message: `YAML syntax error: ${reason}; inside [ ] or { } quote the variable: "${variable}"`,
      })
    }
  }
  return hinted.size > 0 ? problems.filter((p) => hinted.has(p.line!)) : problems
}

function unquotedFlowVariable(line: string): string | undefined {
  const unquoted = line.replace(/#.*$/, '').replace(/"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'/g, '""')
  return /[[{][^#]*?(\$\{[^}]*\})/.exec(unquoted)?.[1]
}

interface SchemaError {
  readonly message: string
  readonly schema: {
    anyOf?: { const?: unknown; type?: string; pattern?: string; properties?: Record<string, unknown> }[]
    description?: string
    properties?: Record<string, unknown>
  }
  readonly path: string
  readonly value: unknown
  readonly type: number
}

/**
 * A mapping that fails a `true`-or-mapping option (`websocket: true` or
 * `websocket: { maxMessage, … }`) is wrong in one of its keys: report those, where
 * TypeBox reports only that no member of the union matched.
 */
function intoMapping(error: ValueError): ValueError[] {
  const members = error.schema.anyOf as TSchema[] | undefined
  const mapping = members?.some((member) => member.type === 'boolean')
    ? members.find((member) => member.type === 'object')
    : undefined
  const { value } = error
  if (!mapping || typeof value !== 'object' || value === null || Array.isArray(value)) return [error]
  // The union's defaults were not filled in, since no member matched.
  const filled = Value.Default(mapping, structuredClone(value))
  return [...Value.Errors(mapping, filled)].map((inner) => ({ ...inner, path: `${error.path}${inner.path}` }))
}

/** TypeBox's messages, said the way a person editing YAML needs them. */
function describe(error: SchemaError): string {
  const options = error.schema.anyOf
  if (error.message === 'Unexpected property') {
    const key = String(unescapePointer(error.path.split('/').at(-1) ?? ''))
    const meant = closest(key, Object.keys(error.schema.properties ?? {}))
    return meant === undefined ? 'unknown option' : `unknown option (did you mean ${meant}?)`
  }
  if (error.message.startsWith('Expected required property')) return 'is required'
  if (options?.some((o) => o.type === 'boolean') && options.some((o) => o.type === 'object')) {
    const keys = Object.keys(options.find((o) => o.type === 'object')?.properties ?? {})
    return `must be true, false or a mapping of ${keys.join(', ')} (got ${JSON.stringify(error.value)})`
  }
  if (options?.every((o) => o.const !== undefined)) {
    return `must be one of ${options.map((o) => o.const).join(', ')} (got ${JSON.stringify(error.value)})`
  }
  if (options?.some((o) => o.pattern !== undefined)) {
    return error.schema.description?.includes('A duration')
      ? `must be a duration like 500ms, 30s, 5m, 12h, 1d or a number of seconds (got ${JSON.stringify(error.value)})`
      : `must be a size like 1mb, 512kb or a number of bytes (got ${JSON.stringify(error.value)})`
  }
  return error.message.charAt(0).toLowerCase() + error.message.slice(1)
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>()
  // A bad union member also fails the union itself: keep one line per path,
  // preferring the most specific message (the first TypeBox yields).
  return problems.filter((p) => {
    if (seen.has(p.path)) return false
    seen.add(p.path)
    return true
  })
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
  const resolveRoute =
    (at: Path) =>
    (r: RawConfig['routes'][number], i: number): RouteConfig => {
      const path = trimSlash(r.path)
      const routeTls = tls.get(formatPath([...at, i, 'tls']))
      return {
        path,
        upstream: r.upstream.replace(/\/+$/, ''),
        rewritePath: r.rewritePath === undefined ? path : trimSlash(r.rewritePath),
        token: r.token,
        scopes: r.scopes,
        ...(r.resource === undefined ? {} : { resource: r.resource }),
        // Bound only where the session's provider binds its tokens (guard.ts: a session without a key sends bearer).
        dpop:
          servedProviders(rawProviders, r.identityProviders).some((p) => p.oidc.dpop) &&
          r.token !== 'none' &&
          (r.dpop ?? true),
        retryOnInvalidToken: r.retryOnInvalidToken,
        methods: routeMethods(r.methods),
        csrf: r.csrf,
        anonymous: r.anonymous ?? false,
        timeout: parseDuration(r.timeout),
        bodyLimit: parseSize(r.bodyLimit),
        websocket: resolveWebSocket(r.websocket),
        allowClearSiteData: r.allowClearSiteData,
        passHeaders: r.passHeaders.map((name) => name.toLowerCase()),
        ...(routeTls === undefined ? {} : { tls: routeTls }),
        ...(r.identityProviders === undefined ? {} : { identityProviders: [...r.identityProviders] }),
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
      routes: f.routes.map(resolveRoute(['frontends', i, 'routes'])),
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
      maxWebSockets: config.session.maxWebSockets,
      localCache: config.session.localCache,
      claims: config.session.claims,
    },
    tokens: {
      refreshBefore: parseDuration(config.tokens.refreshBefore),
      refreshWait: parseDuration(config.tokens.refreshWait),
      retryCooldown: parseDuration(config.tokens.retryCooldown),
      unavailableLimit: parseDuration(config.tokens.unavailableLimit),
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

export function formatPath(path: readonly (string | number)[]): string {
  let out = ''
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`
  return out
}

function unescapePointer(part: string): string | number {
  const text = part.replace(/~1/g, '/').replace(/~0/g, '~')
  return /^\d+$/.test(text) ? Number(text) : text
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v)
    Object.freeze(value)
  }
  return value
}

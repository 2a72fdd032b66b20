import { type Static, Type } from '@sinclair/typebox'
import { DURATION_PATTERN, SIZE_PATTERN } from './duration.js'

/**
 * The schema of `routes.yaml`, as users write it. `loadConfig` validates
 * against it, fills the defaults below, and resolves it into the frozen
 * `GatehouseConfig`. `schema/routes.schema.json` is generated from it.
 */
export const DEFAULTS = {
  host: '0.0.0.0',
  port: 3000,
  oidcTimeout: '10s',
  oidcConnectTimeout: '3s',
  idleTimeout: '30m',
  absoluteTimeout: '12h',
  maxSessions: 100_000,
  localCache: 10_000,
  refreshBefore: '30s',
  refreshWait: '10s',
  routeTimeout: '30s',
  bodyLimit: '1mb',
} as const

const Duration = (description: string, defaultValue?: string) =>
  Type.Union([Type.Number({ minimum: 0 }), Type.String({ pattern: DURATION_PATTERN })], {
    description: `${description} A duration: 500ms, 30s, 5m, 12h, 1d, or a number of seconds.`,
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
  })

const strict = { additionalProperties: false } as const

export const ServerSchema = Type.Object(
  {
    host: Type.String({ default: DEFAULTS.host, description: 'Interface to listen on.' }),
    port: Type.Integer({
      minimum: 0,
      maximum: 65535,
      default: DEFAULTS.port,
      description: 'Port to listen on.',
    }),
    publicUrl: Type.String({
      minLength: 1,
      description:
        'Origin the browser sees, e.g. https://app.example.com. With https, cookies are Secure and __Host- prefixed.',
    }),
    trustProxy: Type.Boolean({ default: false, description: 'Trust X-Forwarded-* from a proxy in front.' }),
    headersTimeout: Duration("Longest wait for a client's request headers (slowloris).", '10s'),
    requestTimeout: Duration("Longest wait for a client's whole request, body included.", '60s'),
    keepAliveTimeout: Duration(
      'How long an idle keep-alive connection stays open; keep it above the load balancer idle timeout.',
      '72s',
    ),
    maxHeaderSize: Type.Union([Type.Integer({ minimum: 1024 }), Type.String({ pattern: SIZE_PATTERN })], {
      default: '16kb',
      description: 'Largest request header block; larger requests get 431.',
    }),
  },
  { ...strict, description: 'Where Gatehouse listens and how the browser reaches it.' },
)

export const OidcSchema = Type.Object(
  {
    issuer: Type.String({
      minLength: 1,
      description:
        'Issuer URL of the OpenID Provider; discovery document at /.well-known/openid-configuration.',
    }),
    clientId: Type.String({ minLength: 1, description: 'The confidential client registered at the IdP.' }),
    clientSecret: Type.String({ minLength: 1, description: 'The client secret. Use ${OIDC_CLIENT_SECRET}.' }),
    clientAuth: Type.Union([Type.Literal('client_secret_basic'), Type.Literal('client_secret_post')], {
      default: 'client_secret_basic',
      description: 'How the client authenticates at the token endpoint.',
    }),
    scopes: Type.Array(Type.String({ minLength: 1 }), {
      default: ['openid', 'profile', 'offline_access'],
      description: 'Scopes requested at login; offline_access is needed for refresh tokens.',
    }),
    timeout: Duration('Total budget of one back-channel call to the IdP.', DEFAULTS.oidcTimeout),
    connectTimeout: Duration(
      'Connect budget of one back-channel call to the IdP.',
      DEFAULTS.oidcConnectTimeout,
    ),
  },
  { ...strict, description: 'The OpenID Provider and this client.' },
)

export const SessionSchema = Type.Object(
  {
    secret: Type.Optional(
      Type.String({ description: 'Seals cookies; at least 32 characters. Use ${SESSION_SECRET}.' }),
    ),
    secrets: Type.Optional(
      Type.Array(Type.String(), {
        minItems: 1,
        description: 'Key rotation: the first seals new cookies, the others only open old ones.',
      }),
    ),
    store: Type.String({
      default: 'memory',
      description: 'memory, or redis://host:port/db (rediss:// for TLS) to share sessions across instances.',
    }),
    idleTimeout: Duration('Sliding expiry of an unused session.', DEFAULTS.idleTimeout),
    absoluteTimeout: Duration('Hard limit on a session from login.', DEFAULTS.absoluteTimeout),
    cookieName: Type.String({
      pattern: '^[A-Za-z0-9_-]+$',
      default: 'gatehouse',
      description: 'Session cookie name; becomes __Host-<name> when publicUrl is https.',
    }),
    keyPrefix: Type.String({ default: 'gatehouse:', description: 'Prefix of every key in a shared store.' }),
    maxSessions: Type.Integer({
      minimum: 1,
      default: DEFAULTS.maxSessions,
      description: 'Memory store only: most sessions held; the least recently used is evicted past it.',
    }),
    localCache: Type.Integer({
      minimum: 0,
      default: DEFAULTS.localCache,
      description:
        'Redis store only: sessions each instance keeps in memory, dropped as soon as Redis reports a change to them; 0 turns the copy off.',
    }),
  },
  { ...strict, description: 'Server-side sessions and the sealed cookie that points at them.' },
)

export const TokensSchema = Type.Object(
  {
    refreshBefore: Duration('Refresh an access token this long before it expires.', DEFAULTS.refreshBefore),
    refreshWait: Duration("Longest a request waits on another request's refresh.", DEFAULTS.refreshWait),
  },
  { ...strict, default: {}, description: 'Access-token freshness.' },
)

export const RouteSchema = Type.Object(
  {
    path: Type.String({ minLength: 1, description: 'Path prefix, matched on whole segments.' }),
    upstream: Type.String({ minLength: 1, description: 'http(s)://host:port of the upstream.' }),
    rewritePath: Type.Optional(Type.String({ description: 'Replaces the matched prefix when forwarding.' })),
    token: Type.Union(
      [Type.Literal('user'), Type.Literal('optional-user'), Type.Literal('client'), Type.Literal('none')],
      {
        default: 'user',
        description: 'Which token to forward: the user, optional user, client credentials, none.',
      },
    ),
    scopes: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'Scopes of the client-credentials token, for token: client.',
    }),
    csrf: Type.Boolean({
      default: true,
      description: 'Require the anti-forgery header; false for static routes.',
    }),
    timeout: Duration('Upstream response timeout.', DEFAULTS.routeTimeout),
    bodyLimit: Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: SIZE_PATTERN })], {
      default: DEFAULTS.bodyLimit,
      description: 'Largest request body forwarded: bytes, or 512kb, 1mb.',
    }),
  },
  { ...strict, description: 'One proxied path prefix.' },
)

export const ConfigSchema = Type.Object(
  {
    server: ServerSchema,
    oidc: OidcSchema,
    session: SessionSchema,
    tokens: TokensSchema,
    auth: Type.Object(
      {
        basePath: Type.String({ default: '/auth', description: 'Where the login endpoints live.' }),
        rateLimit: Type.Object(
          {
            max: Type.Integer({ minimum: 1, default: 30, description: 'Requests per client IP and window.' }),
            window: Duration('The rate-limit window.', '1m'),
          },
          { ...strict, default: {}, description: 'Rate limit on login and callback, per client IP.' },
        ),
      },
      { ...strict, default: {} },
    ),
    csrf: Type.Object(
      {
        header: Type.String({
          pattern: '^[A-Za-z0-9-]+$',
          default: 'x-csrf',
          description: 'API routes require this header with the value 1.',
        }),
      },
      { ...strict, default: {} },
    ),
    logging: Type.Object(
      {
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
          { default: 'info' },
        ),
        accessLog: Type.Boolean({
          default: false,
          description:
            'One info line per request (method, route, status, ms). Off by default: the ingress in front usually logs requests, and the line costs about 13 % of throughput (docs/performance.md).',
        }),
      },
      { ...strict, default: {} },
    ),
    metrics: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'Serve Prometheus metrics at /metrics.' }),
        port: Type.Optional(
          Type.Integer({
            minimum: 1,
            maximum: 65535,
            description:
              'Serve /metrics on this port instead of the main one (keeps it off the public listener).',
          }),
        ),
      },
      { ...strict, default: {}, description: 'Prometheus metrics.' },
    ),
    routes: Type.Array(RouteSchema, { description: 'Proxied routes.' }),
  },
  {
    ...strict,
    $id: 'https://gatehouse.dev/schema/routes.schema.json',
    title: 'Gatehouse configuration (routes.yaml)',
  },
)

export type RawConfig = Static<typeof ConfigSchema>

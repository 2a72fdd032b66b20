import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { AntiForgeryConfig } from '../guards/csrf.js'
import type { IdentityProviders } from '../oidc/providers.js'
import { type ProxyConfig, registerProxyRoutes } from '../proxy/routes.js'
import type { Sessions } from '../session/sessions.js'
import type { UserTokens } from '../tokens/user-tokens.js'

export interface ProxyOptions {
  readonly config: ProxyConfig & AntiForgeryConfig
  /** Clock of the sessions, epoch ms: the WebSocket session checks read with it. */
  readonly now: () => number
  /** How often open WebSockets, and answers still streaming, re-check their session, ms; default 5 s. */
  readonly websocketRecheck?: number | undefined
  /** The sessions these routes read: a named frontend's; default `app.gatehouse.sessions`. */
  readonly sessions?: Sessions | undefined
  /**
   * The providers whose sessions these routes take for live, and the user
   * tokens that refresh through them alone: a named frontend's; default
   * `app.gatehouse`'s, every provider.
   */
  readonly providers?: IdentityProviders | undefined
  readonly userTokens?: UserTokens | undefined
  /** Other frontends' path prefixes on these routes' host (`neighbourPrefixes`, frontends.ts). */
  readonly neighbours?: readonly string[] | undefined
}

/**
 * `routes[]`: one encapsulated scope per route (see `registerProxyRoutes`),
 * guarded with the sessions and tokens of `app.gatehouse`, reporting to
 * `app.observers`, and answering with `Connection: close` while draining.
 */
export const proxy = fp(
  async function proxy(app: FastifyInstance, opts: ProxyOptions) {
    const { config } = opts
    const { clientTokens } = app.gatehouse
    const sessions = opts.sessions ?? app.gatehouse.sessions
    const providers = opts.providers ?? app.gatehouse.providers
    const userTokens = opts.userTokens ?? app.gatehouse.userTokens
    // The guard's decorator (see proxy/guard.ts), on the root: the root hooks read the request too.
    app.decorateRequest('upstreamToken', null)
    app.decorateRequest('upstreamDpopKey', null)
    app.decorateRequest('upstreamProof', null)
    await registerProxyRoutes(
      app,
      opts.neighbours ? { ...config, neighbours: opts.neighbours } : config,
      {
        config: { csrf: config.csrf, server: { publicUrl: config.server.publicUrl } },
        sessions,
        userTokens,
        clientTokens,
        providers,
        // Upstream proofs need only a handle per session key: the first
        // provider lends its proofs to every route's (the nonces are the upstream's).
        dpop: providers.default.dpopProofs,
      },
      {
        ...app.observers.proxy,
        draining: () => app.draining !== null,
        // Counted over every config's app: a reload does not reset them.
        limits: app.gatehouse.lasting.sockets,
        heldKeys: app.gatehouse.lasting.dpopKeys,
        upstreamNonces: app.gatehouse.lasting.upstreamNonces,
        drain: app.gatehouse.lasting.drain,
        cookiesHad: app.gatehouse.lasting.cookiesHad,
        now: opts.now,
        ...(opts.websocketRecheck === undefined ? {} : { websocketRecheck: opts.websocketRecheck }),
      },
    )
  },
  {
    name: 'gatehouse-proxy',
    fastify: '5.x',
    dependencies: [
      'gatehouse-cookies',
      'gatehouse-observability',
      'gatehouse-services',
      'gatehouse-draining',
    ],
  },
)

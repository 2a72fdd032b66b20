import type { FastifyReply, FastifyRequest } from 'fastify'
import type { GatehouseConfig, RouteConfig } from '../config/types.js'
import { gatehouseError } from '../errors.js'
import type { Sessions } from '../session/sessions.js'
import { audienceOf } from '../tokens/audience.js'
import type { ClientTokens } from '../tokens/client-tokens.js'
import type { UserTokens } from '../tokens/user-tokens.js'
import { bodyLimiter } from './body-limit.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The bearer token to forward upstream; `null` forwards none. */
    upstreamToken: string | null
  }
}

export interface GuardDeps {
  readonly config: GatehouseConfig
  readonly sessions: Sessions
  readonly userTokens: UserTokens
  readonly clientTokens: ClientTokens
}

/**
 * Anti-forgery for script-only endpoints (draft-ietf-oauth-browser-based-apps
 * §6.1.3.2): a custom header cannot be sent cross-origin without a CORS
 * preflight that Gatehouse never grants. Fetch metadata and Origin, when the
 * browser sends them, refuse cross-site calls outright.
 */
export function csrfCheck(config: GatehouseConfig) {
  const header = config.csrf.header
  const origin = new URL(config.server.publicUrl).origin
  return function check(request: FastifyRequest): void {
    refuseCrossSite(request, origin, false)
    if (request.headers[header] !== '1') throw gatehouseError('GATEHOUSE_ERR_CSRF')
  }
}

/**
 * Anti-forgery for WebSocket upgrades: a browser cannot set a custom header
 * on a WebSocket, but it always sends `Origin` on one (RFC 6455 §4.1, §10.2),
 * and it sends cookies whichever site opens it (cross-site WebSocket
 * hijacking). So the upgrade must name this origin.
 */
export function upgradeOriginCheck(config: GatehouseConfig) {
  const origin = new URL(config.server.publicUrl).origin
  return function check(request: FastifyRequest): void {
    refuseCrossSite(request, origin, true)
  }
}

function refuseCrossSite(request: FastifyRequest, origin: string, originRequired: boolean): void {
  const site = request.headers['sec-fetch-site']
  if (site === 'cross-site' || site === 'same-site') throw gatehouseError('GATEHOUSE_ERR_CROSS_SITE')
  const from = request.headers.origin
  if (from === undefined ? originRequired : from !== origin) throw gatehouseError('GATEHOUSE_ERR_CROSS_SITE')
}

/**
 * The preHandler of one proxy route, built once at startup: anti-forgery
 * first, so a forged call never costs a session read, then the token the
 * route asks for. `antiForgery` replaces the header check (WebSocket upgrades).
 */
export function routeGuard(
  route: RouteConfig,
  deps: GuardDeps,
  antiForgery: (request: FastifyRequest) => void = csrfCheck(deps.config),
) {
  const csrf = route.csrf ? antiForgery : undefined
  const limit = bodyLimiter(route.bodyLimit)
  const scopes = route.scopes
  switch (route.token) {
    case 'none':
      return async function guardNone(request: FastifyRequest, _reply: FastifyReply) {
        csrf?.(request)
        limit(request)
      }
    case 'client': {
      // The gateway's own credentials: serving them to anyone who asks lets
      // anyone act as the gateway, so a session is required unless the route
      // opts out by name (`anonymous: true`).
      const anonymous = route.anonymous
      return async function guardClient(request: FastifyRequest, _reply: FastifyReply) {
        csrf?.(request)
        limit(request)
        if (!anonymous && !(await deps.sessions.current(request)))
          throw gatehouseError('GATEHOUSE_ERR_UNAUTHENTICATED')
        request.upstreamToken = await deps.clientTokens.accessToken(scopes)
      }
    }
    default: {
      const required = route.token === 'user'
      const audience = audienceOf(route)
      return async function guardUser(request: FastifyRequest, _reply: FastifyReply) {
        csrf?.(request)
        limit(request)
        const session = await deps.sessions.current(request)
        if (!session) {
          if (required) throw gatehouseError('GATEHOUSE_ERR_UNAUTHENTICATED')
          return
        }
        // Nearly every call finds a fresh token: take it without another await.
        request.upstreamToken = deps.userTokens.needsRefresh(session, audience)
          ? await deps.userTokens.accessToken(session, audience)
          : audience
            ? session.tokens.audiences![audience.key]!.accessToken
            : session.tokens.accessToken
      }
    }
  }
}

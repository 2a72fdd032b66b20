import type { IncomingMessage } from 'node:http'
import type { FastifyInstance } from 'fastify'
import type { FrontendConfig, GatehouseConfig } from '../config/types.js'
import { FrontendMatcher } from '../frontend-match.js'

type Strategy = Parameters<FastifyInstance['addConstraintStrategy']>[0]
type Stored = NonNullable<ReturnType<ReturnType<Strategy['storage']>['get']>>

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The frontend whose routes this one is (`frontends[].name`), as its constraint says. */
    readonly frontend?: string
  }
}

/** The route constraint each named frontend's routes carry: the frontend's name. */
export const FRONTEND_CONSTRAINT = 'frontend'

/**
 * Picks each request's frontend (`frontends[]`) for the router: a
 * find-my-way constraint strategy, so a frontend's routes match only the
 * requests of that frontend, and a route of one is a 404 through another.
 * Derived once per request: a map lookup by host and a short prefix list
 * (src/frontend-match.ts). Registered only with `frontends:`; a config
 * without them routes as it always did, with no constraint at all.
 */
export function frontendConstraint(config: Pick<GatehouseConfig, 'frontends' | 'server'>): Strategy {
  const frontend = frontendOf(config)
  return {
    name: FRONTEND_CONSTRAINT,
    // Unconstrained routes (/healthz, /readyz) still match every request.
    mustMatchWhenDerived: false,
    storage() {
      const handlers = new Map<string, Stored>()
      return {
        get: (name: string) => handlers.get(name) ?? null,
        set: (name: string, store: Stored) => {
          handlers.set(name, store)
        },
      }
    },
    // No frontend: '' matches no frontend's routes, only the unconstrained ones.
    deriveConstraint: frontend,
    validate(value: unknown) {
      if (typeof value !== 'string') throw new TypeError('a frontend constraint is its name')
    },
  }
}

/**
 * The name of the frontend a request is for, as the router's constraint
 * derives it; `''` for none, which only the unconstrained routes serve.
 */
export function frontendOf(
  config: Pick<GatehouseConfig, 'frontends' | 'server'>,
): (req: IncomingMessage) => string {
  const matcher = new FrontendMatcher(config.frontends)
  const trustProxy = config.server.trustProxy
  return (req) => matcher.select(requestHost(req, trustProxy), req.url ?? '/')?.name ?? ''
}

/**
 * The host the browser used: `Host`, or with `server.trustProxy` the
 * proxy's last `X-Forwarded-Host`, as Fastify's `request.host` reads it.
 */
function requestHost(req: IncomingMessage, trustProxy: boolean): string | undefined {
  if (trustProxy) {
    const forwarded = req.headers['x-forwarded-host']
    if (typeof forwarded === 'string' && forwarded !== '') {
      const comma = forwarded.lastIndexOf(',')
      return comma === -1 ? forwarded : forwarded.slice(comma + 1).trim()
    }
  }
  return req.headers.host
}

/** True when `frontend` serves `path` at its own publicUrl: where its sign-ins may return to. */
export function ownsPath(config: Pick<GatehouseConfig, 'frontends'>, frontend: FrontendConfig) {
  const matcher = new FrontendMatcher(config.frontends)
  const host = frontend.host ?? new URL(frontend.publicUrl).hostname
  return (path: string) => matcher.select(host, path) === frontend
}

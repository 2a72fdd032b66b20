/**
 * The paths Gatehouse answers itself on every host and in every frontend,
 * outside any `auth.basePath`: liveness and readiness (http/health.ts). No
 * route may take one: Fastify refuses the second declaration at start, and
 * in a frontend matched by host the route would shadow them for that host.
 */
export const HEALTH_PATHS = { liveness: '/healthz', readiness: '/readyz' } as const

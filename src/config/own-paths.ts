/**
 * The paths Gatehouse answers itself on every host and in every frontend,
 * outside any `auth.basePath`: liveness and readiness (http/health.ts). No
 * route may take one: Fastify refuses the second declaration at start, and
 * in a frontend matched by host the route would shadow them for that host.
 */
export const HEALTH_PATHS = { liveness: '/healthz', readiness: '/readyz' } as const

/**
 * What Fastify's router (find-my-way) reads as syntax in a path it is
 * given: `:` opens a parameter, `*` a wildcard. A route path, and a
 * frontend prefix its sign-in endpoints sit under, are registered as
 * written: `/v1/items:batchGet` would match and forward `/v1/itemsANY`,
 * and `/api*` would pass the check and then fail the start, or a reload
 * that could name no line and retried the file as if it were fine.
 */
export const ROUTER_SYNTAX = /[:*]/
export const ROUTER_SYNTAX_PROBLEM =
  "must not contain ':' or '*': a path is matched as written, and the router would read them as a parameter and a wildcard"

/**
 * Gatehouse as a library: load a config, build the gateway (a Fastify
 * instance that has not started listening), or start it with signal handling
 * and graceful shutdown, as the CLI does.
 *
 * @example
 * ```ts
 * import { buildGateway, loadConfig } from 'gatehouse'
 * const app = await buildGateway(loadConfig('routes.yaml'))
 * await app.listen({ port: 3000 })
 * ```
 */
export { ConfigError, type ConfigProblem } from './config/errors.js'
export { loadConfig, parseConfig } from './config/load.js'
export type { GatehouseConfig, LogLevel, RouteConfig, TokenMode } from './config/types.js'
export { buildGateway, type GatewayOptions } from './server/gateway.js'
export { type RunningGateway, type StartOptions, start } from './server/start.js'

export { ConfigError, type ConfigProblem, formatProblem } from './errors.js'
export { loadConfig, parseConfig } from './load.js'
export { ConfigSchema } from './schema.js'
export type { GatehouseConfig, LogLevel, RouteConfig, TokenMode } from './types.js'

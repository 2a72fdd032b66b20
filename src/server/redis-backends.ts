import type { GatehouseConfig } from '../config/types.js'
import type { Backends } from './backends.js'

export async function createRedisBackends(_config: GatehouseConfig): Promise<Backends> {
  throw new Error('the Redis store is not available in this build yet')
}

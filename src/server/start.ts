import type { GatehouseConfig } from '../config/types.js'

/** Placeholder until the gateway lands; the CLI calls this. */
export interface RunningGateway {
  readonly url: string
  close(): Promise<void>
}

export async function start(_config: GatehouseConfig): Promise<RunningGateway> {
  throw new Error('not implemented')
}

import { performance } from 'node:perf_hooks'
import type { FastifyBaseLogger } from 'fastify'
import type { LogCode } from '../errors.js'
import { networkCause } from '../network-cause.js'
import type { RedisClient } from './connection.js'

/**
 * One line when the session store becomes unreachable and one when it is
 * back, with how long it was gone: while it is away every request that
 * needs it answers 503 and `/readyz` fails, and without these lines the log
 * would not say why. ioredis reports each reconnection attempt; only the
 * changes are logged. `target` names the store without its credentials.
 * Returns the function that stops watching, for before the gateway closes
 * the connection itself.
 */
export function logAvailability(client: RedisClient, log: FastifyBaseLogger, target: string): () => void {
  let downSince: number | undefined
  const down = (reason: string) => {
    if (downSince !== undefined) return
    downSince = performance.now()
    const code: LogCode = 'GATEHOUSE_STORE_DOWN'
    log.warn(
      { code, store: target, reason },
      `session store unreachable (${reason}): requests that need it answer 503 until it is back`,
    )
  }
  const onError = (err: Error) => down(networkCause(err) ?? err.message)
  const onClose = () => down('connection closed')
  const onReady = () => {
    if (downSince === undefined) return
    const outageMs = Math.round(performance.now() - downSince)
    downSince = undefined
    const code: LogCode = 'GATEHOUSE_STORE_RECOVERED'
    log.info({ code, store: target, outageMs }, `session store reachable again after ${outageMs} ms`)
  }
  client.on('error', onError).on('close', onClose).on('ready', onReady)
  return () => {
    client.off('error', onError).off('close', onClose).off('ready', onReady)
  }
}

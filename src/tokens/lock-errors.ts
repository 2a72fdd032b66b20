import { type GatehouseError, gatehouseError } from '../errors.js'

export function refreshWaitTimeout(key: string, ms: number): GatehouseError {
  return gatehouseError(
    'GATEHOUSE_ERR_REFRESH_WAIT_TIMEOUT',
    `Another request is still refreshing the access token (waited ${ms} ms). Retry shortly.`,
    { lock: key },
  )
}

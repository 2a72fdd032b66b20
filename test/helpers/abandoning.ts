import { type ClientRequest, request as httpRequest, type ServerResponse } from 'node:http'
import type { Test } from 'tap'
import { serveHttp } from './http-server.js'

/**
 * An upstream that starts each answer with `start` and never finishes it;
 * `arrived` settles when a request reaches it, `released` when the gateway
 * has let go of that call (its connection closed).
 */
export async function holdingUpstream(t: Test, start: (res: ServerResponse) => void) {
  let arrived!: () => void
  let released!: () => void
  const arrival = new Promise<void>((resolve) => {
    arrived = resolve
  })
  const release = new Promise<void>((resolve) => {
    released = resolve
  })
  const url = await serveHttp(t, (_req, res) => {
    res.on('close', released)
    start(res)
    arrived()
  })
  return { url, arrival, release }
}

/** A browser's GET through node:http (fetch is undici, which this process's SDK would trace too). */
export function browserGet(url: string, cookie: string): ClientRequest {
  const request = httpRequest(url, { headers: { 'x-csrf': '1', cookie } })
  // The test destroys it; the error that follows is the point.
  request.on('error', () => {})
  request.end()
  return request
}

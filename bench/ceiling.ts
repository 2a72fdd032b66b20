/**
 * The ceiling peer of `npm run bench`: what a proxy on Node costs with no
 * framework, no session and no token. A plain `node:http` server forwards
 * every request under `/api` through an undici `Pool`, and does what any
 * honest HTTP/1.1 proxy must (docs/performance.md, "The peers"):
 *
 * - keep-alive to the upstream over a pool of the size Gatehouse's routes
 *   use (128 connections, pipelining 1);
 * - the answer streamed back chunk by chunk with backpressure, as
 *   Gatehouse's forward.ts does, and the upstream call aborted when the
 *   client leaves;
 * - hop-by-hop headers removed both ways (RFC 9110 §7.6.1), including every
 *   header the `Connection` header names;
 * - `X-Forwarded-For`, `-Proto` and `-Host` set from this hop.
 *
 * What it does not do, and Gatehouse does: sessions, tokens, the
 * anti-forgery check, the path check, spoofable-header stripping, cookie
 * filtering, `Expect` handling, metrics, logging, error pages.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type Dispatcher, Pool } from 'undici'

/** RFC 9110 §7.6.1, and the ones older agents still send. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
])

function named(connection: string | string[] | undefined): string[] | undefined {
  if (connection === undefined) return undefined
  const text = Array.isArray(connection) ? connection.join(',') : connection
  return text.split(',').map((name) => name.trim().toLowerCase())
}

/** The headers that go on, in one pass into a fresh object. */
function forwardable(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  const also = named(headers.connection)
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || also?.includes(name)) continue
    const value = headers[name]
    if (value !== undefined) out[name] = value
  }
  return out
}

class Relay implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse
  #controller: Dispatcher.DispatchController | undefined
  #started = false
  #finished = false

  constructor(res: ServerResponse) {
    this.#res = res
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    // Informational answers are not relayed: the bench's upstream sends none.
    if (statusCode < 200) return
    this.#started = true
    this.#res.writeHead(statusCode, forwardable(headers))
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#res.write(chunk)) {
      controller.pause()
      this.#res.once('drain', () => controller.resume())
    }
  }

  onResponseEnd(): void {
    this.#finished = true
    this.#res.end()
  }

  onResponseError(_controller: Dispatcher.DispatchController, _error: Error): void {
    this.#finished = true
    if (this.#res.destroyed) return
    if (this.#started) this.#res.destroy()
    else {
      this.#res.writeHead(502, { 'content-type': 'application/json' })
      this.#res.end('{"error":"bad_gateway"}')
    }
  }

  /** A client that goes away mid-answer must not keep the upstream busy. */
  closed(): void {
    if (!this.#finished) this.#controller?.abort(new Error('client closed the connection'))
  }
}

export async function ceiling(target: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const pool = new Pool(target, { connections: 128, pipelining: 1, keepAliveTimeout: 60_000 })
  const prefix = '/api'
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/'
    if (url !== prefix && !url.startsWith(`${prefix}/`) && !url.startsWith(`${prefix}?`)) {
      res.writeHead(404).end()
      return
    }
    const headers = forwardable(req.headers)
    headers['x-forwarded-for'] = req.socket.remoteAddress ?? ''
    headers['x-forwarded-proto'] = 'http'
    headers['x-forwarded-host'] = req.headers.host ?? ''
    const relay = new Relay(res)
    res.once('close', () => relay.closed())
    const method = req.method as Dispatcher.HttpMethod
    pool.dispatch(
      {
        path: url,
        method,
        headers,
        body: method === 'GET' || method === 'HEAD' ? null : req,
      },
      relay,
    )
  })
  server.keepAliveTimeout = 75_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await pool.close()
    },
  }
}

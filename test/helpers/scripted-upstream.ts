import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http'
import type { AddressInfo } from 'node:net'

export interface ScriptedRequest {
  /** The request-target exactly as it arrived on the wire. */
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders: readonly string[]
  readonly body: Buffer
}

export interface ScriptedUpstream {
  readonly url: string
  readonly seen: ScriptedRequest[]
  answer(fn: (res: ServerResponse, url: string) => void): void
  close(): Promise<void>
}

/** An upstream whose answer each test scripts, recording what it was sent, body included. */
export async function scriptedUpstream(): Promise<ScriptedUpstream> {
  const seen: ScriptedRequest[] = []
  let answer: (res: ServerResponse, url: string) => void = (res) => res.end('ok')
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      seen.push({
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks),
      })
      answer(res, req.url ?? '')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    seen,
    answer(fn) {
      answer = fn
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

export interface RawResponse {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders: string[]
  readonly body: Buffer
}

/** A client-side response read whole. */
export function readResponse(res: IncomingMessage): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    res.on('data', (chunk: Buffer) => chunks.push(chunk))
    res.on('end', () =>
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        rawHeaders: res.rawHeaders,
        body: Buffer.concat(chunks),
      }),
    )
    res.on('error', reject)
  })
}

/** A raw HTTP/1.1 call, so hop-by-hop and repeated headers are visible and sendable. */
export function rawCall(
  url: string,
  headers: Record<string, string | string[]>,
  init: { method?: string; body?: Buffer; path?: string } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const target = new URL(url)
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        method: init.method ?? 'GET',
        // Set apart from `url` so a path reaches the wire unnormalised.
        path: init.path ?? target.pathname + target.search,
        headers: { 'x-csrf': '1', ...headers },
      },
      (res) => readResponse(res).then(resolve, reject),
    )
    req.on('error', reject)
    req.end(init.body)
  })
}

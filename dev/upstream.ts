/**
 * A development upstream that answers every request with what it saw, so
 * the demo and the tests can check what Gatehouse forwarded. It never puts
 * a credential in its response: the browser must never see a token, even
 * reflected. The raw Authorization header is kept only in-process, in
 * `requests`, for test assertions.
 */
import { createHash } from 'node:crypto'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface SeenRequest {
  readonly method: string
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly authorization: string | undefined
  readonly body: string
}

export interface EchoUpstreamOptions {
  /** Looks a token up (e.g. introspection) so the response can show its expiry and subject. */
  readonly describeToken?: (token: string) => Promise<Record<string, unknown> | undefined>
}

export interface EchoUpstream {
  readonly url: string
  readonly requests: SeenRequest[]
  clear(): void
  close(): Promise<void>
}

const hidden = new Set(['authorization', 'cookie', 'proxy-authorization'])

export async function startEchoUpstream(options: EchoUpstreamOptions = {}): Promise<EchoUpstream> {
  const requests: SeenRequest[] = []
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream')
    // Faults on demand, for the gateway's timeout and error tests.
    if (url.pathname.endsWith('/hang')) return
    if (url.pathname.endsWith('/reset')) {
      req.socket.destroy()
      return
    }
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const body = Buffer.concat(chunks).toString('utf8')
    const authorization = req.headers.authorization
    requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, authorization, body })

    const slow = Number(url.searchParams.get('delayMs') ?? 0)
    if (slow > 0) await new Promise((resolve) => setTimeout(resolve, slow))

    const headers: Record<string, unknown> = {}
    for (const [name, value] of Object.entries(req.headers)) headers[name] = hidden.has(name) ? '[present]' : value
    const token = authorization?.startsWith('Bearer ') ? authorization.slice(7) : undefined
    const described = token && options.describeToken ? await options.describeToken(token) : undefined
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(
      JSON.stringify({
        method: req.method,
        path: req.url,
        headers,
        bodyLength: body.length,
        token: token
          ? {
              present: true,
              fingerprint: createHash('sha256').update(token).digest('hex').slice(0, 8),
              ...described,
            }
          : { present: false },
      }),
    )
  })
  server.keepAliveTimeout = 65_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    clear: () => {
      requests.length = 0
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

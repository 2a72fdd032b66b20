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
  /** Same as `describeToken`, RFC 7662-shaped: `{ active: false }` shows nothing. */
  readonly introspect?: (token: string) => Promise<Record<string, unknown>>
  /** Latency before every answer, in ms, or a function asked per request. */
  readonly delayMs?: number | ((request: SeenRequest) => number)
  /**
   * Answer 401 `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750
   * §3.1) to a bearer token that `introspect` says is not active, as a
   * resource server does once a token is revoked.
   */
  readonly rejectInactive?: boolean
}

export interface EchoUpstream {
  readonly url: string
  readonly requests: SeenRequest[]
  clear(): void
  close(): Promise<void>
}

/** What a token looks like in a response: never the token itself. */
export interface TokenView {
  readonly present: boolean
  /** First 8 hex digits of the token's SHA-256: enough to tell tokens apart in the demo. */
  readonly fingerprint?: string
  readonly length?: number
  readonly [claim: string]: unknown
}

const hidden = new Set(['authorization', 'cookie', 'proxy-authorization'])

export async function startEchoUpstream(options: EchoUpstreamOptions = {}): Promise<EchoUpstream> {
  const requests: SeenRequest[] = []
  const describe = async (token: string): Promise<Record<string, unknown> | undefined> => {
    if (options.describeToken) return options.describeToken(token)
    if (!options.introspect) return undefined
    const { active, token_type: _type, ...claims } = await options.introspect(token)
    return active ? claims : undefined
  }
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream')
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const body = Buffer.concat(chunks).toString('utf8')
    const authorization = req.headers.authorization
    const seen: SeenRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: req.headers,
      authorization,
      body,
    }
    requests.push(seen)

    // Faults on demand, for the gateway's timeout and error tests.
    if (url.pathname.endsWith('/hang')) return
    if (url.pathname.endsWith('/reset')) {
      req.socket.destroy()
      return
    }
    const configured = typeof options.delayMs === 'function' ? options.delayMs(seen) : (options.delayMs ?? 0)
    const asked = url.pathname.endsWith('/slow')
      ? url.searchParams.get('ms')
      : url.searchParams.get('delayMs')
    const wait = configured + Number(asked ?? 0)
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))

    const headers: Record<string, unknown> = {}
    for (const [name, value] of Object.entries(req.headers))
      headers[name] = hidden.has(name) ? '[present]' : value
    const token = authorization?.startsWith('Bearer ') ? authorization.slice(7) : undefined
    if (token && options.rejectInactive && options.introspect) {
      const found = await options.introspect(token).catch(() => ({ active: false }))
      if (!found.active) {
        res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' })
        res.end()
        return
      }
    }
    const described = token ? await describe(token).catch(() => undefined) : undefined
    const view: TokenView = token
      ? {
          ...described,
          present: true,
          fingerprint: createHash('sha256').update(token).digest('hex').slice(0, 8),
          length: token.length,
        }
      : { present: false }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(
      JSON.stringify({
        method: req.method,
        path: req.url,
        headers,
        body,
        bodyLength: body.length,
        token: view,
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

/**
 * The dev IdP's edge: what answers back-channel requests before
 * oidc-provider does, the way a gateway or policy in front of a real OP
 * would. Used for answers oidc-provider never gives itself.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

/** The back-channel endpoints a canned answer can stand in for. */
export type CannedEndpoint = 'token' | 'revocation' | 'par' | 'userinfo' | 'jwks'

/**
 * An answer the IdP's edge gives instead of oidc-provider, for answers
 * oidc-provider never gives itself (an unknown error code, a 401 without a
 * body, an HTML error page). It is decided before oidc-provider sees the
 * request, so nothing is redeemed or rotated behind it.
 */
export interface CannedAnswer {
  readonly status: number
  /**
   * JSON for an object; sent as is for a string. A function is given the
   * request's form parameters: an IdP that quotes what it refused.
   */
  readonly body?:
    | string
    | Readonly<Record<string, unknown>>
    | ((params: URLSearchParams) => string | Readonly<Record<string, unknown>>)
  readonly headers?: Readonly<Record<string, string>>
  /** Only token requests of this `grant_type`; default every request to the endpoint. */
  readonly grantType?: string
  /**
   * The answer waits for this to resolve, its body already made: an IdP
   * whose endpoint holds a request open until the client's timeout. Given
   * the answer, whose `close` tells the client gave up.
   */
  readonly held?: (res: ServerResponse) => Promise<void>
}

/**
 * Reads a back-channel request's form body and lets `decide` answer it in
 * oidc-provider's place (RFC 8707 §2 `invalid_target` for a refused
 * resource, a canned answer), else hands it on to oidc-provider.
 */
export function atTheEdge(
  req: IncomingMessage,
  res: ServerResponse,
  handle: (req: IncomingMessage, res: ServerResponse) => void,
  decide: (params: URLSearchParams) => CannedAnswer | undefined,
): void {
  const chunks: Buffer[] = []
  req.on('data', (chunk: Buffer) => chunks.push(chunk))
  req.on('end', () => {
    const body = Buffer.concat(chunks)
    const params = new URLSearchParams(body.toString('utf8'))
    const answer = decide(params)
    if (answer) {
      const text = typeof answer.body === 'function' ? answer.body(params) : answer.body
      const json = typeof text !== 'string'
      const write = () => {
        // The client gave up waiting (its timeout): nothing to answer.
        if (res.destroyed) return
        res.writeHead(answer.status, {
          ...(text === undefined ? {} : { 'content-type': json ? 'application/json' : 'text/html' }),
          'cache-control': 'no-store',
          ...answer.headers,
        })
        res.end(text === undefined ? undefined : json ? JSON.stringify(text) : text)
      }
      if (answer.held) void answer.held(res).then(write, write)
      else write()
      return
    }
    // The stream is spent; oidc-provider then reads the body from `req.body`.
    Object.assign(req, { body: body.toString('utf8') })
    handle(req, res)
  })
}

import { type IncomingHttpHeaders, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import type { GatehouseConfig } from '../../src/config/types.js'
import { buildGateway, type GatewayOptions } from '../../src/server/gateway.js'
import { UNREACHABLE_ISSUER } from './app.js'
import { route, type TestConfigInput, testConfig } from './gateway.js'

export interface BothReplyPaths {
  readonly app: FastifyInstance
  readonly config: GatehouseConfig
  /** The gateway's URL. */
  readonly base: string
  readonly port: number
  /**
   * A session cookie whose record is gone. Sent to `/maybe`, its answer
   * clears it, so the upstream's answer goes out through Fastify's send
   * (and its onSend hooks) rather than the hijacked reply `/pub` takes.
   */
  readonly staleCookie: string
}

/**
 * A gateway with no IdP in front of `upstream` on both of the proxy's
 * reply paths: `/pub` (`token: none`) and `/maybe` (`token: optional-user`),
 * closed when the test ends. `input` adds options, and routes after those two.
 */
export async function gatewayOnBothReplyPaths(
  t: Test,
  upstream: string,
  input: Partial<TestConfigInput> = {},
  options: GatewayOptions = {},
): Promise<BothReplyPaths> {
  const config = testConfig({
    port: 0,
    issuer: UNREACHABLE_ISSUER,
    ...input,
    routes: [
      route('/pub', upstream, { token: 'none', csrf: false }),
      route('/maybe', upstream, { token: 'optional-user', csrf: false }),
      ...(input.routes ?? []),
    ],
  })
  const app = await buildGateway(config, options)
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as AddressInfo).port
  const sealed = app.encodeSecureSession(app.createSecureSession({ id: 'gone' }), 'session')
  return {
    app,
    config,
    base: `http://127.0.0.1:${port}`,
    port,
    staleCookie: `${config.session.cookieName}=${encodeURIComponent(sealed)}`,
  }
}

/** An answer, with the informational (1xx) answers that came before it. */
export interface AnswerWithHints {
  readonly informational: readonly { readonly status: number; readonly headers: IncomingHttpHeaders }[]
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

/** GETs `url` with node:http, which, unlike fetch, hands over each 1xx answer (a `103`'s headers). */
export function getWithHints(url: string, headers: Record<string, string> = {}): Promise<AnswerWithHints> {
  return new Promise((resolve, reject) => {
    const informational: AnswerWithHints['informational'][number][] = []
    const req = request(url, { headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        body += chunk
      })
      res.on('end', () => resolve({ informational, status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('information', (info) => informational.push({ status: info.statusCode, headers: info.headers }))
    req.on('error', reject)
    req.end()
  })
}

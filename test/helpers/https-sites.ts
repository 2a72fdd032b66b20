import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'
import { startDevIdp } from '../../dev/idp.js'
import {
  CLIENT_ID,
  CLIENT_SECRET,
  startGateway,
  type TestGateway,
  type TestRoute,
  testConfig,
} from './gateway.js'
import { onFreePort } from './ports.js'
import { selfSigned, startTlsFront } from './tls-front.js'

/**
 * A gateway for `routes` behind a TLS front for `host` (localhost when not
 * given), signing users in at a dev IdP of its own: how a Chromium test
 * reaches it over https, where its cookies take their `__Host-` prefix.
 * The front relays to the gateway's port, and the IdP must know the front's
 * URL, before the gateway listens: onFreePort picks again if the port is
 * taken meanwhile. Everything started ends with `t`.
 */
export async function gatewayOverHttps(
  t: Test,
  host: string | undefined,
  routes: readonly TestRoute[],
): Promise<{ readonly base: string; readonly port: number; readonly gateway: TestGateway }> {
  return onFreePort(async (port) => {
    const front = await startTlsFront(port, host)
    const idp = await startDevIdp({
      clients: [
        { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [`${front.url}/auth/callback`] },
      ],
    })
    try {
      const gateway = await startGateway(
        testConfig({ port, publicUrl: front.url, issuer: idp.issuer, routes: [...routes] }),
      )
      t.teardown(() => gateway.close())
      t.teardown(() => idp.close())
      t.teardown(() => front.close())
      return { base: front.url, port, gateway }
    } catch (err) {
      await Promise.all([idp.close(), front.close()])
      throw err
    }
  })
}

/**
 * A blank page at each of `hosts` over https, on one loopback port: the
 * other origins' pages. Loopback like the app's, so Chromium's Local
 * Network Access treats their calls to the app as it would between two
 * public sites.
 */
export async function pagesElsewhere(t: Test, hosts: readonly string[]): Promise<string[]> {
  const server = createServer(selfSigned(hosts), (_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html' })
    response.end('<!doctype html><title>elsewhere</title><body></body>')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  const { port } = server.address() as AddressInfo
  return hosts.map((host) => `https://${host}:${port}`)
}

import type { AddressInfo } from 'node:net'
import t from 'tap'
import { buildGateway } from '../../src/server/gateway.js'
import { UNREACHABLE_ISSUER } from '../helpers/app.js'
import { route, testConfig } from '../helpers/gateway.js'
import { lastSegment, NOT_FOUND, rawUpstream } from '../helpers/http-server.js'

/*
 * undici refuses a `100 Continue` it did not ask for (it never sends
 * `Expect`) and a `101` to a request that asked for no upgrade, as a
 * SocketError ('bad response', 'bad upgrade') without a code of its own.
 * The gateway answered both `502 upstream_unreachable`, counted as
 * unreachable: an operator was sent to look for an upstream that is down,
 * when it is up and answering what must not be passed on.
 */

const ANSWERS: Record<string, string> = {
  continue: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  switching: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
}

t.test(
  'an upstream that answers 100 or 101 to a plain request is 502 upstream_invalid_response',
  async (t) => {
    const upstream = await rawUpstream(t, (path) => ANSWERS[lastSegment(path)] ?? NOT_FOUND)
    const app = await buildGateway(
      testConfig({
        port: 0,
        issuer: UNREACHABLE_ISSUER,
        routes: [
          route('/up', upstream.url, {
            token: 'none',
            csrf: false,
          }),
        ],
      }),
    )
    t.teardown(() => app.close())
    await app.listen({ host: '127.0.0.1', port: 0 })
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    for (const path of Object.keys(ANSWERS)) {
      const res = await fetch(`${base}/up/${path}`)
      t.equal(res.status, 502, path)
      t.equal(((await res.json()) as { error: string }).error, 'upstream_invalid_response', path)
    }
  },
)

import { type AddressInfo, createServer } from 'node:net'
import t from 'tap'
import { buildGateway } from '../../src/server/gateway.js'
import { UNREACHABLE_ISSUER } from '../helpers/app.js'
import { route, testConfig } from '../helpers/gateway.js'

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
    const upstream = createServer((socket) => {
      let head = ''
      socket.on('error', () => {})
      socket.on('data', (chunk: Buffer) => {
        head += chunk.toString('latin1')
        if (!head.includes('\r\n\r\n')) return
        socket.end(ANSWERS[/^GET \S*\/(\w+) HTTP/.exec(head)?.[1] ?? ''] ?? 'HTTP/1.1 404 Not Found\r\n\r\n')
      })
    })
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => upstream.close(() => resolve())))
    const app = await buildGateway(
      testConfig({
        port: 0,
        issuer: UNREACHABLE_ISSUER,
        routes: [
          route('/up', `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, {
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

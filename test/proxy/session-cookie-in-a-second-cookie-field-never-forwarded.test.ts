import { connect } from 'node:net'
import t from 'tap'
import { route } from '../helpers/gateway.js'
import { login } from '../helpers/login.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'
import { startStack } from '../helpers/stack.js'

/*
 * Where a browser or a hop in front puts the session cookie: a second
 * `Cookie` field line (RFC 9110 §5.3 lets a recipient join them; Node joins
 * `Cookie` lines with "; "), behind the app's own cookies, and a request
 * whose `Connection` names the very headers the gateway sets or strips, to
 * have them dropped as hop-by-hop after the gateway's rewrite. Neither
 * leaks the cookie or keeps the gateway's token and forwarding headers
 * from the upstream. Written on a raw socket, as no HTTP client sends two
 * `Cookie` lines.
 */

function rawGet(base: string, path: string, lines: readonly string[]): Promise<string> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      // Not `end`: Node's server drops a half-closed connection's pending answer.
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\n${lines.map((l) => `${l}\r\n`).join('')}Connection: close\r\n\r\n`,
      )
    })
    let answer = ''
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1')
    })
    socket.on('close', () => resolve(answer))
    socket.on('error', reject)
  })
}

t.test(
  'a session cookie in a second Cookie line, or a Connection naming what the gateway sets, leaks nothing',
  async (t) => {
    const upstream = await scriptedUpstream()
    t.teardown(() => upstream.close())
    const stack = await startStack(t, { routes: () => [route('/api/user', upstream.url)] })
    const base = stack.gateway.url
    const { jar } = await login(base)
    const session = /gatehouse=[^;]+/.exec(jar.header(`${base}/api/user/x`)!)![0]

    const second = await rawGet(base, '/api/user/x', [
      'x-csrf: 1',
      'Cookie: app=1',
      `Cookie: theme=dark; ${session}`,
    ])
    t.match(second, /^HTTP\/1\.1 200 /, 'the session in the second line is read')
    let seen = upstream.seen.at(-1)!
    t.match(seen.headers.authorization, /^Bearer /, "the upstream gets the session's token")
    t.equal(seen.headers.cookie, 'app=1; theme=dark', 'and both lines of cookies but the session')

    const named = await rawGet(base, '/api/user/x', [
      'x-csrf: 1',
      `Cookie: app=1; ${session}`,
      'Authorization: Bearer forged',
      'X-Forwarded-For: 203.0.113.9',
      'Connection: authorization, cookie, x-forwarded-for, x-forwarded-host, x-forwarded-proto',
    ])
    t.match(named, /^HTTP\/1\.1 200 /)
    seen = upstream.seen.at(-1)!
    t.match(
      seen.headers.authorization,
      /^Bearer (?!forged)/,
      "the gateway's token, not the client's, and not dropped",
    )
    t.equal(seen.headers.cookie, 'app=1', "the client's own cookies, without the session")
    t.equal(seen.headers['x-forwarded-for'], '127.0.0.1', "the gateway's X-Forwarded-For, not the client's")
    t.ok(seen.headers['x-forwarded-host'], 'X-Forwarded-Host still set')
    t.ok(seen.headers['x-forwarded-proto'], 'X-Forwarded-Proto still set')
    t.equal(upstream.seen.length, 2)
  },
)

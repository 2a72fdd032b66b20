/**
 * An upgrade that carries a body. RFC 6455 §4.1: the opening handshake is a
 * GET without one. Such an upgrade used to be taken: the gateway fetched
 * the route's token, dialled the upstream with it, answered 101, and then
 * read the body's bytes as the browser's first frames (1002). Now it is a
 * 400 before any token is fetched or the upstream dialled.
 */
import t from 'tap'
import { rawUpgrade, signedInToWebSocketRoutes } from '../../helpers/websocket.js'

const BODIES: readonly (readonly [readonly string[], string])[] = [
  [['Content-Length: 5'], 'hello'],
  [['Transfer-Encoding: chunked'], '5\r\nhello\r\n0\r\n\r\n'],
]

t.test(
  'an upgrade with a body is a 400 invalid_upgrade before a token is fetched or the upstream dialled',
  async (t) => {
    const { upstream, stack, jar, tokenRequests } = await signedInToWebSocketRoutes(t)
    for (const path of ['/live/feed', '/service/feed']) {
      for (const [framing, body] of BODIES) {
        const answer = await rawUpgrade(stack, jar, path, { headers: framing, body })
        t.match(answer, /^HTTP\/1\.1 400 /, `${path} with ${framing}`)
        t.match(answer, /"error":"invalid_upgrade"/)
        t.match(answer, /must not carry a body/)
      }
    }
    t.equal(upstream.upgrades.length, 0, 'the upstream was never dialled')
    t.equal(stack.idp.stats.tokenRequests, tokenRequests, 'no client token was fetched for them')

    // Content-Length: 0 declares no body; such an upgrade is taken.
    const empty = await rawUpgrade(stack, jar, '/live/feed', { headers: ['Content-Length: 0'] })
    t.match(empty, /^HTTP\/1\.1 101 /)
    t.equal(upstream.upgrades.length, 1)
  },
)

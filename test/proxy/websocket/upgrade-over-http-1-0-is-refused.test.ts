/**
 * An upgrade in an HTTP/1.0 request. RFC 9110 §7.8: a server MUST ignore
 * `Upgrade` in an HTTP/1.0 request, since an HTTP/1.0 hop in front knows
 * nothing of `Connection` and may have passed on headers meant for itself;
 * RFC 6455 §4.1 asks for HTTP/1.1 or later. Node raises `upgrade` for it
 * all the same, and the gateway fetched the route's token, dialled the
 * upstream and answered 101 to a hop that may not know what it means. Now
 * it is a 400 before any token is fetched or the upstream dialled.
 */
import t from 'tap'
import { rawUpgrade, signedInToWebSocketRoutes } from '../../helpers/websocket.js'

t.test(
  'an HTTP/1.0 upgrade is a 400 invalid_upgrade before a token is fetched or the upstream dialled',
  async (t) => {
    const { upstream, stack, jar, tokenRequests } = await signedInToWebSocketRoutes(t)
    for (const path of ['/live/feed', '/service/feed']) {
      const answer = await rawUpgrade(stack, jar, path, { version: '1.0' })
      t.match(answer, /^HTTP\/1\.1 400 /, path)
      t.match(answer, /"error":"invalid_upgrade"/)
      t.match(answer, /must be an HTTP\/1\.1 request/)
    }
    t.equal(upstream.upgrades.length, 0, 'the upstream was never dialled')
    t.equal(stack.idp.stats.tokenRequests, tokenRequests, 'no client token was fetched for them')

    t.match(
      await rawUpgrade(stack, jar, '/live/feed'),
      /^HTTP\/1\.1 101 /,
      'the same upgrade in HTTP/1.1 is taken',
    )
    t.equal(upstream.upgrades.length, 1)
  },
)

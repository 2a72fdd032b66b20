import t from 'tap'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'
import { startStack } from '../helpers/stack.js'

/*
 * RFC 9111 §3.5: a shared cache stores no answer to a request that carries
 * Authorization unless the answer says it may. An upstream behind Gatehouse
 * sees the user's token in Authorization and may rely on that, answering a
 * user's own data with `Cache-Control: max-age=60`; but a CDN or caching
 * proxy in front of the gateway sees a request with a cookie only, which no
 * rule keeps it from storing, and served one user's answer to the next.
 */

t.test(
  'an answer to a request the gateway sent a token with is private to shared caches, unless it says otherwise',
  async (t) => {
    const upstream = await scriptedUpstream()
    t.teardown(() => upstream.close())
    upstream.answer((res, url) => {
      const cc = new URL(url, 'http://x').searchParams.get('cc')
      if (cc !== null) res.setHeader('cache-control', cc)
      res.end('{"user":"mine"}')
    })
    const stack = await startStack(t, {
      routes: () => [route('/api', upstream.url), route('/public', upstream.url, { token: 'none' })],
    })
    const base = stack.gateway.url
    const { jar } = await login(base)
    const cases: [sent: string | null, expected: string | null][] = [
      [null, 'private'],
      ['max-age=60', 'private, max-age=60'],
      ['no-cache', 'private, no-cache'],
      ['private="set-cookie", max-age=60', 'private, private="set-cookie", max-age=60'],
      // A directive's quoted field list names header fields, not directives (RFC 9111 §5.2.2.4).
      ['no-cache="x,public,y", max-age=60', 'private, no-cache="x,public,y", max-age=60'],
      ['no-cache="no-store", max-age=60', 'private, no-cache="no-store", max-age=60'],
      // §3.5 lets must-revalidate alone open an answer to shared caches, but
      // upstreams send it to mean "revalidate once stale", for a browser.
      ['max-age=60, must-revalidate', 'private, max-age=60, must-revalidate'],
      ['max-age=0, must-revalidate', 'private, max-age=0, must-revalidate'],
      ['must-revalidate, s-maxage=60', 'must-revalidate, s-maxage=60'],
      // What says outright that shared caches may store it, and what they never store.
      ['public, max-age=60', 'public, max-age=60'],
      ['s-maxage=60', 's-maxage=60'],
      ['private, max-age=60', 'private, max-age=60'],
      ['no-store', 'no-store'],
    ]
    for (const [sent, expected] of cases) {
      const query = sent === null ? '' : `?cc=${encodeURIComponent(sent)}`
      const answer = await apiCall(jar, `${base}/api/me${query}`)
      t.equal(answer.status, 200)
      t.equal(answer.headers.get('cache-control'), expected, `user route, upstream sent ${sent ?? 'none'}`)
    }
    for (const sent of [null, 'max-age=60']) {
      const query = sent === null ? '' : `?cc=${encodeURIComponent(sent)}`
      const answer = await apiCall(jar, `${base}/public/page${query}`)
      t.equal(
        answer.headers.get('cache-control'),
        sent,
        `token: none route, as the upstream sent it (${sent})`,
      )
    }
  },
)

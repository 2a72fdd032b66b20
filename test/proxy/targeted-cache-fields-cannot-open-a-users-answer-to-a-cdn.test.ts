import t from 'tap'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'
import { startStack } from '../helpers/stack.js'

/*
 * The gateway marks an answer to a request it sent a token with `private`
 * to shared caches (shared-caches-never-store-a-users-answer.test.ts), but
 * a CDN in front reads other fields in place of `Cache-Control`: a
 * targeted field (RFC 9213 §2.1: `CDN-Cache-Control`, and its own, such as
 * `Cloudflare-CDN-Cache-Control`), `Surrogate-Control` (Fastly, Varnish,
 * Akamai; Cloudflare then ignores `Cache-Control`) and nginx's
 * `X-Accel-Expires`, which outranks `Cache-Control` in its `proxy_cache`.
 * An upstream that relied on RFC 9111 §3.5 (it saw the user's token in
 * `Authorization`, which a CDN in front never sees) and sent
 * `CDN-Cache-Control: max-age=60` on a user's own data had that answer
 * stored by the CDN and served to the next user, the gateway's `private`
 * notwithstanding.
 */

t.test(
  'a targeted cache field is private like Cache-Control, and a surrogate field goes unless Cache-Control opened the answer',
  async (t) => {
    const upstream = await scriptedUpstream()
    t.teardown(() => upstream.close())
    upstream.answer((res, url) => {
      for (const [name, value] of new URL(url, 'http://x').searchParams) res.setHeader(name, value)
      res.end('{"user":"mine"}')
    })
    const stack = await startStack(t, {
      routes: () => [route('/api', upstream.url), route('/public', upstream.url, { token: 'none' })],
    })
    const base = stack.gateway.url
    const { jar } = await login(base)
    const call = async (path: string, sent: Record<string, string>) => {
      const answer = await apiCall(jar, `${base}${path}?${new URLSearchParams(sent)}`)
      t.equal(answer.status, 200)
      return answer.headers
    }

    const targeted: [sent: string, expected: string][] = [
      ['max-age=60', 'private, max-age=60'],
      ['max-age=60, must-revalidate', 'private, max-age=60, must-revalidate'],
      ['no-cache="public", max-age=60', 'private, no-cache="public", max-age=60'],
      // What says outright who may store it stands, in the targeted field as in Cache-Control.
      ['public, max-age=60', 'public, max-age=60'],
      ['s-maxage=60', 's-maxage=60'],
      ['no-store', 'no-store'],
    ]
    for (const name of ['cdn-cache-control', 'cloudflare-cdn-cache-control', 'vercel-cdn-cache-control']) {
      for (const [sent, expected] of targeted) {
        const headers = await call('/api/me', { [name]: sent, 'cache-control': 'max-age=60' })
        t.equal(headers.get(name), expected, `${name}: ${sent}`)
        t.equal(
          headers.get('cache-control'),
          'private, max-age=60',
          `${name}: ${sent}, Cache-Control still private`,
        )
      }
    }

    for (const name of ['surrogate-control', 'x-accel-expires']) {
      const value = name === 'x-accel-expires' ? '60' : 'max-age=60'
      for (const cc of ['max-age=60', 'no-store', 'private, max-age=60']) {
        const headers = await call('/api/me', { [name]: value, 'cache-control': cc })
        t.equal(headers.get(name), null, `${name} dropped beside Cache-Control: ${cc}`)
      }
      for (const cc of ['public, max-age=60', 's-maxage=60']) {
        const headers = await call('/api/me', { [name]: value, 'cache-control': cc })
        t.equal(headers.get(name), value, `${name} kept beside Cache-Control: ${cc}, which opened it`)
      }
    }

    const unrelated = await call('/api/me', {
      'x-cache-control': 'max-age=60',
      'cache-control': 'max-age=60',
    })
    t.equal(unrelated.get('x-cache-control'), 'max-age=60', 'a field no cache reads as its own passes')

    const open = await call('/public/page', {
      'cdn-cache-control': 'max-age=60',
      'surrogate-control': 'max-age=60',
    })
    t.equal(open.get('cdn-cache-control'), 'max-age=60', 'token: none route: the targeted field as sent')
    t.equal(open.get('surrogate-control'), 'max-age=60', 'token: none route: the surrogate field as sent')
  },
)

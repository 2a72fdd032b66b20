import t, { type Test } from 'tap'
import { route } from '../helpers/gateway.js'
import { rawUpstream } from '../helpers/http-server.js'
import { apiCall, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

/*
 * RFC 9110 §5.6.3: the whitespace around a list's members (OWS) is spaces
 * and tabs only. A CDN in front reads `max-age=60,<NBSP>public` as
 * `max-age=60` and a directive it does not know, so `Cache-Control` did
 * not open the answer to it; the gateway took any Unicode space
 * (JavaScript's `\s`) as OWS, saw `public`, left `Cache-Control` without
 * `private` and kept `Surrogate-Control`, which the CDN obeys over it.
 * undici decodes a field value as latin1, so the space an upstream can
 * send is byte 0xA0 (obs-text, which the parsers take); Node's
 * `setHeader` would write it as UTF-8, hence the raw socket. Beside it,
 * what held untested: a directive on a second field line, and names in any
 * case or repeated, are read as the one list they are.
 */

/** A raw upstream answering with the fields its request's query names, written byte for byte (latin1). */
async function rawFieldsUpstream(t: Test): Promise<string> {
  const { url } = await rawUpstream(
    t,
    (path) => {
      let fields = ''
      for (const [name, value] of new URL(path, 'http://x').searchParams) fields += `${name}: ${value}\r\n`
      return `HTTP/1.1 200 OK\r\n${fields}Content-Length: 2\r\n\r\n{}`
    },
    { keepAlive: true },
  )
  return url
}

t.test('a directive behind a space other than SP or HTAB opens nothing to a shared cache', async (t) => {
  const upstream = await rawFieldsUpstream(t)
  const stack = await startStack(t, { routes: () => [route('/api', upstream)] })
  const base = stack.gateway.url
  const { jar } = await login(base)
  const call = async (sent: Record<string, string>) => {
    const answer = await apiCall(jar, `${base}/api/me?${new URLSearchParams(sent)}`)
    t.equal(answer.status, 200)
    return answer.headers
  }

  for (const space of ['\u00a0', ' \u00a0', '\u00a0\t']) {
    const label = JSON.stringify(space.replace('\u00a0', '<0xA0>'))
    const headers = await call({
      'cache-control': `max-age=60,${space}public`,
      'surrogate-control': 'max-age=600',
    })
    t.equal(headers.get('surrogate-control'), null, `${label}: Surrogate-Control dropped`)
    t.match(headers.get('cache-control'), /^private, /, `${label}: Cache-Control made private`)
    const targeted = await call({ 'cdn-cache-control': `max-age=60,${space}s-maxage=60` })
    t.match(targeted.get('cdn-cache-control'), /^private, /, `${label}: CDN-Cache-Control made private`)
  }

  // Spaces and tabs are OWS, and still separate the directives.
  for (const ows of [' ', '\t', ' \t ']) {
    const headers = await call({
      'cache-control': `max-age=60,${ows}public`,
      'surrogate-control': 'max-age=600',
    })
    t.equal(headers.get('surrogate-control'), 'max-age=600', `${JSON.stringify(ows)}: Surrogate-Control kept`)
    t.notMatch(
      headers.get('cache-control'),
      /private/,
      `${JSON.stringify(ows)}: Cache-Control not made private`,
    )
  }
})

t.test('a field repeated, or its name in any case, is read as one list', async (t) => {
  const upstream = await rawFieldsUpstream(t)
  const stack = await startStack(t, { routes: () => [route('/api', upstream)] })
  const base = stack.gateway.url
  const { jar } = await login(base)
  const call = async (sent: [string, string][]) => {
    const answer = await apiCall(jar, `${base}/api/me?${new URLSearchParams(sent)}`)
    t.equal(answer.status, 200)
    return answer.headers
  }

  // RFC 9110 §5.3: two field lines are one list; a name is case-insensitive (§5.1).
  const split = await call([
    ['CACHE-CONTROL', 'max-age=60'],
    ['Cache-Control', 'PUBLIC'],
    ['SURROGATE-CONTROL', 'max-age=600'],
  ])
  t.equal(split.get('surrogate-control'), 'max-age=600', 'a public on a second line opens it')
  t.notMatch(split.get('cache-control'), /private/)

  const closed = await call([
    ['Cache-Control', 'max-age=60'],
    ['Surrogate-Control', 'max-age=600'],
    ['surrogate-CONTROL', 'max-age=600'],
    ['X-Accel-Expires', '600'],
    ['Service-Worker-Allowed', '/'],
    ['SERVICE-WORKER-ALLOWED', '/'],
    ['X-ACCEL-REDIRECT', '/internal/'],
  ])
  for (const name of ['surrogate-control', 'x-accel-expires', 'service-worker-allowed', 'x-accel-redirect'])
    t.equal(closed.get(name), null, `${name}: every line dropped, whatever its case`)
  t.equal(closed.get('cache-control'), 'private, max-age=60')
})

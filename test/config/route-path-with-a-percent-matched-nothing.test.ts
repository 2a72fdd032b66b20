import t from 'tap'
import { request } from 'undici'
import { startEchoUpstream } from '../../dev/upstream.js'
import { listeningTestApp } from '../helpers/app.js'
import {
  configProblems,
  PATH_CONFIG_ENV as env,
  withPathPrefix,
  withRoutePath,
} from '../helpers/config-problems.js'
import { route } from '../helpers/gateway.js'

/*
 * A route path with a %-escape (`/files/a%20b`) loaded, and matched no
 * request: the router takes a `%` in a route as the character itself,
 * and matches a request's path after decoding its escapes, so
 * `/files/a%20b` was looked up as `/files/a b`. A route written with the
 * character decoded (`/café`) matched, and was put in the upstream's
 * path as written (`rewritePath` defaults to it), where `é` cannot go:
 * the request failed with a bare 400, the upstream asked nothing.
 */

const PROBLEM =
  "must hold only the characters a URL path carries unescaped (letters, digits, / and - . _ ~ ! $ & ' ( ) + , ; = @), no % or character that needs one (a space, é): a route is matched against the request's path decoded and sent upstream as written, so a % in it matches no request, and a character that needs one cannot be sent. A shorter prefix (/files, for /files/a%20b) serves what follows it as the browser sent it"

t.test('a route path with a %, or a character that needs one, is refused at its line', async (t) => {
  for (const path of ['/files/a%20b', '/g%2Fp', '/p%25q', '/%7Euser', '/caf\u00e9', '/a^b', '/a{b}']) {
    t.same(configProblems(withRoutePath(path), env), [`8 routes[1].path: ${PROBLEM}`], path)
  }
})

t.test("so is a frontend's pathPrefix, which its sign-in endpoints are registered under", async (t) => {
  t.same(configProblems(withPathPrefix('/sh%6Fp'), env), [
    `8 frontends[0].pathPrefix: ${PROBLEM}`,
    `11 frontends[0].routes[0].path: ${PROBLEM}`,
  ])
})

t.test('a request under the shorter prefix reaches the upstream with its escapes as sent', async (t) => {
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  const { url } = await listeningTestApp(t, {
    routes: [route('/files', upstream.url, { token: 'none', csrf: false })],
  })
  for (const path of ['/files/a%20b', '/files/caf%C3%A9/x', '/files/g%2Fp']) {
    upstream.clear()
    const res = await request(`${url}${path}?q=1`)
    await res.body.dump()
    t.equal(res.statusCode, 200, path)
    t.same(
      upstream.requests.map((r) => r.path),
      [`${path}?q=1`],
      `${path}: forwarded as sent`,
    )
  }
})

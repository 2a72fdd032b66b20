import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { buildGateway } from '../../src/server/gateway.js'
import { UNREACHABLE_ISSUER } from '../helpers/app.js'
import { testConfigRaw } from '../helpers/gateway.js'
import { serveHttp } from '../helpers/http-server.js'
import { rawCall } from '../helpers/scripted-upstream.js'

/**
 * Two frontends on one host: `shop` under /shop, and `site`, which takes
 * every other path there with a catch-all route. A frontend is chosen on the
 * path as sent, so `/sh%6fp/api/x` or `/SHOP/api/x` is `site`'s, and its
 * upstream, which decodes or folds case, read the shop's path from `site`'s
 * route, under `site`'s session and rules.
 */
t.test(
  "a spelling of another frontend's path on its host is refused by the catch-all frontend",
  async (t) => {
    const seen: string[] = []
    const recorder = (name: string) => (req: IncomingMessage, res: ServerResponse) => {
      seen.push(`${name} ${req.url}`)
      res.end()
    }
    const site = await serveHttp(t, recorder('site'))
    const shop = await serveHttp(t, recorder('shop'))
    const publicUrl = 'http://127.0.0.1:3000'
    const raw = {
      ...testConfigRaw({ port: 0, issuer: UNREACHABLE_ISSUER, routes: [] }),
      frontends: [
        {
          name: 'site',
          host: '127.0.0.1',
          publicUrl,
          routes: [{ path: '/', upstream: site, token: 'none', csrf: false }],
        },
        {
          name: 'shop',
          host: '127.0.0.1',
          pathPrefix: '/shop',
          publicUrl,
          routes: [{ path: '/shop/api', upstream: shop, token: 'none' }],
        },
      ],
    }
    delete (raw as { routes?: unknown }).routes
    const app = await buildGateway(parseConfig(JSON.stringify(raw), 'test config', {}))
    t.teardown(() => app.close())
    await app.listen({ host: '127.0.0.1', port: 0 })
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    const call = (path: string) => rawCall(`${base}/`, { host: '127.0.0.1' }, { path })
    for (const path of [
      '/sh%6fp/api/x',
      '/SHOP/api/x',
      '/Shop',
      '/shop%2Fapi/x',
      '/shop;x=1/api/x',
      '/shop./api/x',
      '/shop%252Fapi',
    ]) {
      const res = await call(path)
      t.equal(res.status, 400, path)
      t.match(res.body.toString(), /"error":"invalid_path"/, path)
    }
    t.same(seen, [], 'no upstream saw any of them')
    for (const [path, expected] of [
      ['/shop/api/x', 'shop /shop/api/x'],
      ['/shop/%61pi/x', 'shop /shop/api/x'],
      ['/shopping/Cart', 'site /shopping/Cart'],
      ['/Products/a%2Fb', 'site /Products/a%2Fb'],
    ] as const) {
      seen.length = 0
      const res = await call(path)
      t.equal(res.status, 200, path)
      t.same(seen, [expected], `${path} reached its frontend's route`)
    }
  },
)

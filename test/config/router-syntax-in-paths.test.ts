import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { buildGateway } from '../../src/server/gateway.js'
import {
  configProblems,
  PATH_CONFIG_ENV as env,
  withPathPrefix,
  withRoutePath,
} from '../helpers/config-problems.js'

/*
 * A route path, or a frontend's pathPrefix, is handed to Fastify's router
 * as written, and the router reads `:` as a parameter and `*` as a
 * wildcard. `/api*` passed `check`, then the start failed with "Wildcard
 * must be the last character in the route", and a reload of it was refused
 * without a line and retried five times as if the file were fine;
 * `/v1/items:batchGet` loaded, and forwarded `/v1/itemsANYTHING` too.
 */

const PROBLEM =
  "must not contain ':' or '*': a path is matched as written, and the router would read them as a parameter and a wildcard"

t.test("a route path with ':' or '*' is a check error at its path and line", async (t) => {
  for (const path of ['/api*', '/pub/*', '/*', '/v1/items:batchGet', '/:', '/a::b']) {
    t.same(configProblems(withRoutePath(path), env), [`8 routes[1].path: ${PROBLEM}`], path)
  }
})

t.test("so is a frontend's pathPrefix, which its sign-in endpoints are registered under", async (t) => {
  t.same(configProblems(withPathPrefix('/sh*p'), env), [
    `8 frontends[0].pathPrefix: ${PROBLEM}`,
    `11 frontends[0].routes[0].path: ${PROBLEM}`,
  ])
  t.same(configProblems(withPathPrefix('/sh:p'), env), [
    `8 frontends[0].pathPrefix: ${PROBLEM}`,
    `11 frontends[0].routes[0].path: ${PROBLEM}`,
  ])
})

t.test('the characters beside them load, start, and match only their own path', async (t) => {
  for (const path of ['/a+b', '/a;b', "/a'b", '/x(y)', '/a@b', '/a=b,c']) {
    const app = await buildGateway(parseConfig(withRoutePath(path), 'routes.yaml', env))
    t.teardown(() => app.close())
    await app.ready()
    const own = await app.inject({ url: path })
    t.not(
      own.statusCode,
      404,
      `${path}: its own path reaches this route (${own.statusCode}, the upstream being down)`,
    )
    const widened = await app.inject({ url: path.replace(/[^a-z/]/, 'ZZ') })
    t.equal(widened.statusCode, 404, `${path}: another path is not this route`)
  }
})

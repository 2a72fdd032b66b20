import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { configProblems, PATH_CONFIG_ENV as env, withRoutePath } from '../helpers/config-problems.js'

/*
 * A route is refused a spelling of a deeper route's path (proxy/path-check.ts),
 * but two routes that an upstream reads as one path lie under neither: with
 * /api and /API, /API/x was forwarded by the /API route to its upstream,
 * which, folding case as Express and ASP.NET Core do, serves /api's path
 * there under /API's token and rules. Such a pair is refused at load.
 */
t.test('a route path that an upstream reads as an earlier one is refused at its line', async (t) => {
  for (const path of ['/API', '/Api/', '/api;v=1', '/api.']) {
    const problems = configProblems(withRoutePath(path), env)
    t.match(problems, [/^8 routes\[1\]\.path: reads as routes\[0\]\.path \(\/api\) to an upstream/], path)
  }
})

t.test('paths an upstream tells apart load', async (t) => {
  for (const path of ['/apis', '/api/admin', '/API/admin', '/v1.2', '/api-v2']) {
    t.ok(parseConfig(withRoutePath(path), 'routes.yaml', env), path)
  }
})

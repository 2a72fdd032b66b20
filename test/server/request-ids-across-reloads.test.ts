import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { jarFetch } from '../helpers/login.js'
import { configText, LogLines, startReloadable } from '../helpers/reloadable.js'
import { until } from '../helpers/websocket.js'

t.test('request ids do not start again after a reload: no two requests share one', async (t) => {
  const log = new LogLines()
  const stack = await startReloadable(
    t,
    (upstream) => [route('/api/public', upstream, { token: 'none', csrf: false })],
    { logStream: log.stream, input: { logLevel: 'info', accessLog: true } },
  )
  const get = async (path: string) => (await jarFetch(new CookieJar(), `${stack.url}${path}`)).status
  for (const path of ['/api/public/a', '/api/public/b']) t.equal(await get(path), 200)

  stack.configMap.write(
    configText({
      ...stack.input,
      accessLog: true,
      routes: [
        route('/api/public', stack.upstream.url, { token: 'none', csrf: false }),
        route('/api/new', stack.upstream.url, { token: 'none', csrf: false }),
      ],
    }),
  )
  t.ok(await until(async () => (await get('/api/new/x')) === 200), 'reloaded')
  for (const path of ['/api/new/a', '/api/public/c']) t.equal(await get(path), 200)

  const ids = log.lines.filter((l) => l.msg === 'request').map((l) => [l.reqId, l.path])
  t.ok(ids.length >= 4, `an access log line per request (${ids.length})`)
  t.equal(new Set(ids.map(([id]) => id)).size, ids.length, `every request its own id: ${JSON.stringify(ids)}`)
})

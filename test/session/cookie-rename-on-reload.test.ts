import t from 'tap'
import { Agent, request } from 'undici'
import { route } from '../helpers/gateway.js'
import { login } from '../helpers/login.js'
import { configText, startReloadable } from '../helpers/reloadable.js'

/**
 * Renaming the session cookie (`session.cookieName`) signs everyone out:
 * the gateway reads no cookie by the old name. A keep-alive connection
 * remembers the last `Cookie` header read on it, and what it was read to;
 * that memory outlived the reload, so a browser's open connection, and
 * after it any connection with the same header, kept its session under the
 * old name.
 */
t.test(
  'a reload that renames the session cookie: the old cookie opens nothing, on an open connection or a new one',
  async (t) => {
    const stack = await startReloadable(t, (upstream) => [route('/api/orders', upstream)])
    // A first reload, so the gateway serving the rename is itself a reloaded one.
    stack.configMap.write(configText({ ...stack.input, logLevel: 'warn' }))
    t.match(await stack.running.reload(), { result: 'applied' })
    const { jar } = await login(stack.url)
    const cookie = `gatehouse=${jar.get(stack.url, 'gatehouse')!}`
    const keepAlive = new Agent({ connections: 1, pipelining: 1 })
    t.teardown(() => keepAlive.close())
    const call = async (dispatcher?: Agent) => {
      const answer = await request(`${stack.url}/api/orders`, {
        headers: { cookie, 'x-csrf': '1' },
        ...(dispatcher ? { dispatcher } : {}),
      })
      await answer.body.dump()
      return answer.statusCode
    }
    t.equal(await call(keepAlive), 200, 'signed in, on a connection kept open')

    stack.configMap.write(configText({ ...stack.input, logLevel: 'warn', cookieName: 'gatehouse2' }))
    t.match(await stack.running.reload(), { result: 'applied' })
    t.equal(await call(keepAlive), 401, 'the open connection: no session by the new name')
    t.equal(await call(), 401, 'a new connection with the same header: none either')
  },
)

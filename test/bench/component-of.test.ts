import t from 'tap'
import { componentOf } from '../../bench/component-of.js'

const tree = new URL('../../', import.meta.url).href

t.test("Gatehouse's own code is found in the sources and in the compiled build alike", async (t) => {
  for (const base of [`${tree}src/`, `${tree}dist/`]) {
    t.equal(componentOf(`${base}proxy/forward.js`, 'onResponseStart'), 'gatehouse src/proxy', base)
    t.equal(componentOf(`${base}session/sessions.js`, 'peek'), 'gatehouse src/session')
    t.equal(componentOf(`${base}server/listener.js`, ''), 'gatehouse src/server, src/guards, src/http')
    t.equal(componentOf(`${base}tokens/user-tokens.js`, 'current'), 'gatehouse src/tokens')
    t.equal(componentOf(`${base}header-rules.js`, 'connectionNamed'), 'gatehouse src (other)')
  }
})

t.test("a package's own dist/ or src/ folder is not Gatehouse's", async (t) => {
  t.equal(
    componentOf(`${tree}node_modules/cookie/dist/index.js`, 'parse'),
    '@fastify/secure-session, libsodium, @fastify/cookie',
  )
  t.equal(componentOf(`${tree}node_modules/undici/lib/dispatcher/client.js`, '_resume'), 'undici')
  t.equal(componentOf(`${tree}node_modules/some-package/dist/session/x.js`, 'f'), 'other')
  t.equal(componentOf(`${tree}node_modules/some-package/src/proxy/x.js`, 'f'), 'other')
})

t.test('native code, the JIT and the collector have components of their own', async (t) => {
  t.equal(componentOf('', 'writev'), 'native calls: socket writes, string encoding')
  t.equal(componentOf('', '(program)'), 'V8 and Node native code, JIT')
  t.equal(componentOf('', '(garbage collector)'), 'garbage collection')
  t.equal(componentOf('node:_http_outgoing', '_send'), 'node:http')
})

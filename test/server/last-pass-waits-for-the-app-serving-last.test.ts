/**
 * A shutdown makes one last pass over the owed revocations as the app
 * serving last closes, after its requests in flight. A reload in progress
 * when the shutdown began builds an app that is closed unused, at once:
 * its close made the pass, the moment the shutdown began, and the pass
 * being once, the app still serving found it made when its requests were
 * done. An IdP back during the drain then had the revocation dropped
 * untried as GATEHOUSE_REVOCATION_LOST closed, its grant left live. So
 * too when a reload had replaced an app still answering a request: the
 * app serving, idle, closed first and made the pass.
 */
import { once } from 'node:events'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { refreshTokenOf } from '../helpers/app.js'
import { route } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { configText, LogLines, startReloadable } from '../helpers/reloadable.js'

// An upstream that holds its request until told: the drain's request in flight.
async function holdingUpstream(t: Test) {
  const held: { res?: ServerResponse } = {}
  const upstream = createServer((_req, res) => {
    held.res = res
    upstream.emit('held')
  })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  t.teardown(() => {
    upstream.closeAllConnections()
    upstream.close()
  })
  return {
    url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    holding: () => once(upstream, 'held'),
    end: (body: string) => held.res!.end(body),
  }
}

// Which app lets go of the shared parts first tells which one made the last pass.
function firstRelease(app: FastifyInstance): Promise<void> {
  const lasting = app.gatehouse.lasting
  const release = lasting.release.bind(lasting)
  return new Promise<void>((resolve) => {
    lasting.release = (parts) => {
      const released = release(parts)
      released.then(
        () => resolve(),
        () => resolve(),
      )
      return released
    }
  })
}

t.test(
  'a shutdown during a reload makes its last pass once the app still serving has finished its requests',
  async (t) => {
    const upstream = await holdingUpstream(t)
    const slow = upstream.url

    const logs = new LogLines()
    const stack = await startReloadable(
      t,
      (echo) => [route('/api', echo), route('/slow', slow, { timeout: 60_000 })],
      {
        accessTokenTtl: 600,
        watch: false,
        // Far past the test's life: the reload's discovery waits until the shutdown ends it.
        input: { logLevel: 'info', idpTimeout: 60_000 },
        second: {},
        logStream: logs.stream,
      },
    )
    const { running } = stack
    const base = stack.url
    const { jar } = await login(base)
    const app = running.app
    const token = await refreshTokenOf(app, jar.get(base, 'gatehouse')!)
    const { logoutUrl } = (await apiCall(jar, `${base}/auth/user`)).json<{ logoutUrl: string }>()

    // A request in flight on the app serving as the shutdown begins, sent before the logout.
    const inFlight = apiCall(jar, `${base}/slow/x`)
    await upstream.holding()

    stack.idp.answer('revocation', { status: 503, headers: { 'retry-after': '1' }, body: 'unavailable' })
    t.equal((await jarFetch(jar, `${base}${logoutUrl}`)).status, 200, 'the user is logged out all the same')
    await logs.seen('the revocation owed', (line) => line.code === 'GATEHOUSE_REVOCATION_OWED')

    // A reload stuck discovering an IdP that is down: its app is closed unused once the shutdown begins.
    // The first to let go: the app serving holds on until its request is done.
    const unused = firstRelease(app)
    stack.second!.setDown('503')
    stack.configMap.write(configText({ ...stack.input, issuer: stack.second!.issuer }))
    const reloading = running.reload()
    await logs.seen('the new client failing to discover the IdP', (l) =>
      /discovery failed; retrying/.test(l.msg),
    )

    const closing = running.close()
    await unused
    // The IdP is back before the app serving has finished its request.
    stack.idp.answer('revocation')
    t.equal((await stack.idp.introspect(token)).active, true, 'the token still lives at the IdP')
    upstream.end('done')
    t.equal((await inFlight).status, 200, 'the request in flight is answered')
    await closing
    await reloading

    t.equal((await stack.idp.introspect(token)).active, false, 'the token is dead at the IdP')
    t.notOk(
      logs.lines.some((line) => line.code === 'GATEHOUSE_REVOCATION_LOST'),
      'nothing is lost',
    )
  },
)

t.test(
  'a shutdown makes its last pass once the app a reload replaced has finished its requests too',
  async (t) => {
    const upstream = await holdingUpstream(t)
    const slow = upstream.url
    const routes = (echo: string) => [route('/api', echo), route('/slow', slow, { timeout: 60_000 })]
    const logs = new LogLines()
    const stack = await startReloadable(t, routes, {
      accessTokenTtl: 600,
      watch: false,
      input: { logLevel: 'info' },
      logStream: logs.stream,
    })
    const { running } = stack
    const base = stack.url
    const { jar } = await login(base)
    const first = running.app
    const token = await refreshTokenOf(first, jar.get(base, 'gatehouse')!)
    const { logoutUrl } = (await apiCall(jar, `${base}/auth/user`)).json<{ logoutUrl: string }>()

    // A request in flight on the first app, which a reload then replaces.
    const inFlight = apiCall(jar, `${base}/slow/x`)
    await upstream.holding()
    stack.configMap.write(
      configText({
        ...stack.input,
        routes: [...routes(stack.upstream.url), route('/more', stack.upstream.url)],
      }),
    )
    t.equal((await running.reload()).result, 'applied', 'the reload is applied')
    t.not(running.app, first, 'and its app serves')

    stack.idp.answer('revocation', { status: 503, headers: { 'retry-after': '1' }, body: 'unavailable' })
    t.equal((await jarFetch(jar, `${base}${logoutUrl}`)).status, 200, 'the user is logged out all the same')
    await logs.seen('the revocation owed', (line) => line.code === 'GATEHOUSE_REVOCATION_OWED')

    // The app serving has nothing in flight: it closes at once, the first one when its request is done.
    const idle = firstRelease(first)
    const closing = running.close()
    await idle
    stack.idp.answer('revocation')
    t.equal((await stack.idp.introspect(token)).active, true, 'the token still lives at the IdP')
    upstream.end('done')
    t.equal((await inFlight).status, 200, 'the request in flight is answered')
    await closing

    t.equal((await stack.idp.introspect(token)).active, false, 'the token is dead at the IdP')
    t.notOk(
      logs.lines.some((line) => line.code === 'GATEHOUSE_REVOCATION_LOST'),
      'nothing is lost',
    )
  },
)

import { decodeJwt } from 'jose'
import t from 'tap'
import { route } from '../helpers/gateway.js'
import { login } from '../helpers/login.js'
import { rawCall, scriptedUpstream } from '../helpers/scripted-upstream.js'
import { startStack } from '../helpers/stack.js'

/**
 * RFC 9449 §4.3: a resource server compares `htu` with the URL it was
 * sent. The proof is made from `new URL(upstream + dest)`, which would
 * rewrite what WHATWG URL rewrites (dot segments, `\\`, `{`, a space);
 * the wire carries `dest` as it is. So the two agree only because the
 * gateway refuses such paths before any proof: these pin that, over raw
 * request-targets, with a rewritten prefix and a query.
 */
t.test('htu is the rewritten path exactly as the upstream receives it, without the query', async (t) => {
  const upstream = await scriptedUpstream()
  t.teardown(() => upstream.close())
  const stack = await startStack(t, {
    config: { oidc: { dpop: true } },
    routes: () => [route('/api/orders', upstream.url, { rewritePath: '/v1/orders' })],
  })
  const { jar } = await login(stack.gateway.url)
  const cookie = jar.header(stack.gateway.url)!
  const sentAs = async (path: string) => {
    const before = upstream.seen.length
    const answer = await rawCall(stack.gateway.url, { cookie }, { path })
    const sent = upstream.seen.slice(before)
    return { status: answer.status, sent }
  }

  for (const path of [
    '/api/orders/a%7Eb',
    '/api/orders/a~b',
    '/api/orders/a%2Fb',
    '/api/orders/a%20b?x=1',
    '/api/orders/%C3%A9',
    '/api/orders/;a=b',
    '/api/orders?q=1',
  ]) {
    const { status, sent } = await sentAs(path)
    t.equal(status, 200, path)
    t.equal(sent.length, 1, path)
    const wire = sent[0]!.url
    t.equal(
      decodeJwt(String(sent[0]!.headers.dpop)).htu,
      `${upstream.url}${wire.split('?')[0]}`,
      `${path}: htu is the path as sent (${wire}), byte for byte`,
    )
    t.notOk(wire.startsWith('/api/'), 'the prefix was rewritten')
  }

  for (const path of [
    '/api/orders/x/../y',
    '/api/orders/a%2e%2e/x',
    '/api/orders/a\\b',
    '/api/orders/a{b}',
  ]) {
    const { status, sent } = await sentAs(path)
    t.equal(status, 400, `${path}: a path WHATWG URL would rewrite is refused`)
    t.equal(sent.length, 0, `${path}: no proof made, nothing sent`)
  }
})

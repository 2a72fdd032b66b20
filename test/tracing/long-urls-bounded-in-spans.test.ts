import t from 'tap'
import { route } from '../helpers/gateway.js'
import { CLIENT, receiveSpans } from '../helpers/otlp-receiver.js'
import { startStack } from '../helpers/stack.js'

const receiver = await receiveSpans(t)

// A client chooses the path and query of a proxied call, up to
// server.maxHeaderSize (16 KiB), and the upstream call's span kept both
// whole in url.full, url.path and url.query: with every trace sampled (the
// default), each request put tens of KB in the export queue and at the
// collector. Envoy keeps 256 characters of a path tag (max_path_tag_length).
t.test(
  "an attribute a client's URL fills is cut to 1024 characters, whatever the URL's length",
  async (t) => {
    const stack = await startStack(t, {
      config: { tracing: { enabled: true } },
      routes: (upstream) => [route('/api/public', upstream, { token: 'none' })],
    })
    const path = `/api/public/${'p'.repeat(7_000)};${'k'.repeat(10)}=v`
    const query = Array.from({ length: 800 }, (_, i) => `k${i}=v`).join('&')
    const res = await fetch(`${stack.gateway.url}${path}?${query}`, { headers: { 'x-csrf': '1' } })
    t.equal(res.status, 200, 'the call itself goes through whole')
    t.ok(stack.upstream.requests.at(-1)!.path.length > 7_000, 'the upstream sees the whole URL')
    await stack.close() // flushes the exporter

    const call = receiver.spans.find(
      (s) => s.kind === CLIENT && String(s.attributes['url.full']).includes('/api/public/'),
    )!
    t.ok(call, 'the upstream call has its span')
    for (const name of ['url.full', 'url.path', 'url.query']) {
      const value = String(call.attributes[name])
      t.ok(value.length <= 1_024, `${name} is ${value.length} characters`)
    }
    t.match(
      String(call.attributes['url.full']),
      /^http:\/\/127\.0\.0\.1:\d+\/api\/public\/ppp/,
      'its start is kept',
    )
    const exported = receiver.bodies.join('').length
    t.ok(exported < 16_000, `the whole export is ${exported} characters`)
  },
)

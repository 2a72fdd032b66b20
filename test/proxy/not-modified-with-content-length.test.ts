import { Agent, type IncomingHttpHeaders, request } from 'node:http'
import t, { type Test } from 'tap'
import { gatewayOnBothReplyPaths } from '../helpers/both-reply-paths.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'

/*
 * RFC 9110 §8.6 lets a 304 carry the Content-Length its 200 would have
 * had (ASP.NET Core and others send it), and no 304 or 204 has content
 * (§6.4.1). undici counts the body it never reads against that length and
 * fails the exchange once the head has gone out, so the gateway destroyed
 * the browser's connection with nothing sent: every revalidation of a
 * cached answer from such an upstream was a network error.
 */

async function setup(t: Test) {
  const upstream = await scriptedUpstream()
  t.teardown(() => upstream.close())
  const { base, staleCookie } = await gatewayOnBothReplyPaths(t, upstream.url)
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  return { upstream, base, staleCookie, agent }
}

interface Answer {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

function get(url: string, agent: Agent, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        body += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

t.test(
  'a 304 with the Content-Length of its 200 reaches the browser, and the connection goes on',
  async (t) => {
    const { upstream, base, staleCookie, agent } = await setup(t)
    upstream.answer((res, url) => {
      if (url.endsWith('/cached')) res.writeHead(304, { etag: '"v1"', 'content-length': '42' }).end()
      else res.end('after')
    })
    for (const [name, path, headers] of [
      ['hijacked reply', '/pub', {}],
      ["Fastify's send (a stale cookie is cleared)", '/maybe', { cookie: staleCookie }],
    ] as const) {
      const answer = await get(`${base}${path}/cached`, agent, { ...headers, 'if-none-match': '"v1"' })
      t.equal(answer.status, 304, `${name}: Not Modified`)
      t.equal(answer.headers.etag, '"v1"', `${name}: with its validator`)
      t.equal(answer.headers['content-length'], '42', `${name}: and the length of the 200 (RFC 9110 §8.6)`)
      t.equal(answer.body, '')
      const next = await get(`${base}${path}/next`, agent, headers)
      t.equal(next.body, 'after', `${name}: the browser's connection serves the next request`)
    }
  },
)

t.test('a 204 that claims a Content-Length reaches the browser as a 204, without it', async (t) => {
  const { upstream, base, staleCookie, agent } = await setup(t)
  upstream.answer((res) => res.writeHead(204, { 'content-length': '5', 'x-kept': 'yes' }).end())
  for (const [name, path, headers] of [
    ['hijacked reply', '/pub', {}],
    ["Fastify's send (a stale cookie is cleared)", '/maybe', { cookie: staleCookie }],
  ] as const) {
    const answer = await get(`${base}${path}/gone`, agent, headers)
    t.equal(answer.status, 204, name)
    t.equal(answer.headers['x-kept'], 'yes', `${name}: with the upstream's headers`)
    t.equal(answer.headers['content-length'], undefined, `${name}: but no Content-Length (RFC 9110 §8.6)`)
  }
})

import { request } from 'node:http'
import t from 'tap'
import { route } from '../helpers/gateway.js'
import { serveHttp } from '../helpers/http-server.js'
import { configText, startReloadable } from '../helpers/reloadable.js'

/**
 * A request runs entirely on the config it arrived under: an upload still
 * streaming when a reload removes its route is sent upstream whole, and
 * answered, by the config that took it, while a new request to that path
 * is already the new config's 404.
 */
t.test('a long upload on a route a reload removes finishes on its config', async (t) => {
  let arrived: () => void = () => {}
  const started = new Promise<void>((resolve) => {
    arrived = resolve
  })
  const uploads = await serveHttp(t, (req, res) => {
    arrived()
    let bytes = 0
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length
    })
    req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end(String(bytes)))
  })
  const routes = (upstream: string) => [route('/api/public', upstream, { token: 'none', csrf: false })]
  const stack = await startReloadable(
    t,
    (upstream) => [
      ...routes(upstream),
      route('/api/upload', uploads, { token: 'none', csrf: false, bodyLimit: 64 * 1024 * 1024 }),
    ],
    { watch: false },
  )
  const { url, running, upstream } = stack
  const chunk = Buffer.alloc(1024 * 1024, 'a')
  const target = new URL(`${url}/api/upload/file`)
  const upload = request({
    host: target.hostname,
    port: target.port,
    path: target.pathname,
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
  })
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    upload.on('error', reject)
    upload.on('response', (res) => {
      let body = ''
      res.on('data', (data: Buffer) => {
        body += data
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
  })
  upload.write(chunk)
  // The gateway has routed it and opened its upstream request: it is in flight on the first config.
  await started

  stack.configMap.write(configText({ ...stack.input, routes: routes(upstream.url) }))
  t.equal((await running.reload()).result, 'applied', 'the reload that removes the route applies')
  t.equal(
    (await fetch(`${url}/api/upload/file`, { method: 'POST', body: 'x' })).status,
    404,
    'a new upload is refused',
  )

  for (let i = 1; i < 32; i++) upload.write(chunk)
  upload.end()
  const { status, body } = await answer
  t.equal(status, 200, 'the upload in flight is answered by its config')
  t.equal(body, String(32 * chunk.length), 'every byte reached the upstream')
})

import { connect } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { ScriptedUpstream } from './scripted-upstream.js'

/**
 * A request that reaches the gateway after `app.close()` has begun, on a
 * connection draining cannot close: the answer ahead of it is streaming,
 * its head sent. `first` is proxied to `upstream`, which sends its head and
 * half its body and holds the rest; once that head is in, the app begins
 * to close and `late` is sent on the same connection; once the gateway has
 * read it, the upstream finishes. Resolves with everything the gateway
 * wrote before it closed the connection, and the close's own promise.
 */
export async function requestWhileClosing(
  app: FastifyInstance,
  port: number,
  upstream: ScriptedUpstream,
  first: string,
  late: string,
): Promise<{ readonly received: string; readonly closing: Promise<void> }> {
  let release = () => {}
  upstream.answer((res) => {
    res.writeHead(200, { 'content-length': '4' })
    res.write('ab')
    release = () => res.end('cd')
  })
  const socket = connect(port, '127.0.0.1')
  let received = ''
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1')
  })
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  socket.write(`GET ${first} HTTP/1.1\r\nHost: x\r\n\r\n`)
  await new Promise<void>((resolve) => {
    const headIn = () => {
      if (!received.includes('\r\n\r\nab')) return
      socket.off('data', headIn)
      resolve()
    }
    socket.on('data', headIn)
  })
  const closing = app.close()
  const read = new Promise<void>((resolve) => app.server.once('request', () => resolve()))
  socket.write(`GET ${late} HTTP/1.1\r\nHost: x\r\n\r\n`)
  // Node reads the late request while the first is answered, and its
  // answer waits behind. Fastify's listener came first and runs only
  // synchronous hooks: the answer is made once this one is called.
  await read
  release()
  // Both answers are written, then the connection closes (Connection: close).
  await ended
  return { received, closing }
}

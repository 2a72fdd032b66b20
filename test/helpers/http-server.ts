import { createServer, type RequestListener } from 'node:http'
import { type AddressInfo, createServer as createTcpServer, type Socket } from 'node:net'
import type { Test } from 'tap'

/**
 * A plain node:http server for `handler` on a free loopback port, its URL
 * returned. When the test ends it is closed with every connection it still
 * holds, so an answer a test left hanging cannot keep the process alive.
 */
export async function serveHttp(t: Test, handler: RequestListener): Promise<string> {
  const server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/**
 * An upstream on a raw TCP socket, for answers no real server sends: it
 * reads each request's head (a WebSocket handshake's, or any other's)
 * and writes `answer(path)` as the whole answer, byte for byte (latin1),
 * then ends the connection, or with `keepAlive` waits on it for the next
 * request. An answer of `undefined` has written to the socket itself (a
 * head dribbled without end). Closed at the end of `t`.
 */
export async function rawUpstream(
  t: Test,
  answer: (path: string, socket: Socket) => string | undefined,
  options: { readonly keepAlive?: boolean } = {},
): Promise<{ url: string }> {
  const sockets = new Set<Socket>()
  const server = createTcpServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let head = ''
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      const written = answer(/^\S+ (\S+)/.exec(head)?.[1] ?? '', socket)
      head = ''
      if (written === undefined) return
      if (options.keepAlive) socket.write(written, 'latin1')
      else socket.end(written, 'latin1')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

/** A `rawUpstream` answer for a path it has none for. */
export const NOT_FOUND = 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'

/** The last segment of a request path, without its query: what a scripted answer is looked up by. */
export function lastSegment(path: string): string {
  return /\/([^/?]*)(?:\?.*)?$/.exec(path)?.[1] ?? ''
}

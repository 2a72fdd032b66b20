import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'

/**
 * A TCP relay in front of a real server whose traffic a test can hold and
 * release, to put messages on two connections in a chosen order, or to make
 * a live connection go silent without closing it.
 */
export interface TcpProxy {
  /** `redis://127.0.0.1:{port}/0`-style URL: the target's, with the proxy's port. */
  readonly url: string
  /** Holds what the server sends from now on; `replyHeld` resolves once some is held. */
  holdReplies(): void
  /** Holds both directions: the connection stays open and says nothing. */
  blackhole(): void
  /** Delivers everything held, in order, and relays again. */
  release(): void
  /** Resolves once bytes from the server are being held. */
  replyHeld(): Promise<void>
  /**
   * Relays connections made from now on to `targetUrl`, leaving those
   * already relayed where they are: a name a managed service moved to
   * another node, which only new connections resolve.
   */
  retarget(targetUrl: string): void
  /** Destroys every relayed connection; new ones are still accepted. */
  cut(): void
  close(): Promise<void>
}

interface Pair {
  readonly client: Socket
  readonly server: Socket
  readonly toClient: Buffer[]
  readonly toServer: Buffer[]
}

export async function startTcpProxy(targetUrl: string): Promise<TcpProxy> {
  let target = new URL(targetUrl)
  const pairs = new Set<Pair>()
  let holdDown = false
  let holdUp = false
  let waiters: (() => void)[] = []

  const listener = createServer((client) => {
    const server = connect(Number(target.port), target.hostname)
    const pair: Pair = { client, server, toClient: [], toServer: [] }
    pairs.add(pair)
    server.on('data', (chunk: Buffer) => {
      if (!holdDown) return void client.write(chunk)
      pair.toClient.push(chunk)
      for (const wake of waiters) wake()
      waiters = []
    })
    client.on('data', (chunk: Buffer) => {
      if (holdUp) pair.toServer.push(chunk)
      else server.write(chunk)
    })
    const drop = () => {
      pairs.delete(pair)
      client.destroy()
      server.destroy()
    }
    client.on('close', drop)
    server.on('close', drop)
    client.on('error', drop)
    server.on('error', drop)
  })
  listener.listen(0, '127.0.0.1')
  await once(listener, 'listening')
  const { port } = listener.address() as { port: number }
  const url = new URL(targetUrl)
  url.port = String(port)

  const cut = () => {
    for (const pair of pairs) {
      pair.client.destroy()
      pair.server.destroy()
    }
    pairs.clear()
  }
  return {
    url: url.toString(),
    holdReplies() {
      holdDown = true
    },
    blackhole() {
      holdDown = true
      holdUp = true
    },
    release() {
      holdDown = false
      holdUp = false
      for (const pair of pairs) {
        for (const chunk of pair.toServer.splice(0)) pair.server.write(chunk)
        for (const chunk of pair.toClient.splice(0)) pair.client.write(chunk)
      }
    },
    replyHeld() {
      if ([...pairs].some((pair) => pair.toClient.length > 0)) return Promise.resolve()
      return new Promise((resolve) => waiters.push(resolve))
    },
    retarget(to) {
      target = new URL(to)
    },
    cut,
    async close() {
      cut()
      listener.close()
      await once(listener, 'close')
    },
  }
}

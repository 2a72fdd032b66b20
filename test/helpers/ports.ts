import { createServer } from 'node:net'

/**
 * Ports for tests, without the race of "pick a free port, bind it later".
 *
 * A server that can bind port 0 and report the port it got should: that
 * is never racy. When a port must be known before its server binds (the
 * IdP must know the gateway's redirect URI, a child process is told its
 * port), `onFreePorts` runs the start on candidates and, when the bind
 * loses a race to another process (EADDRINUSE), runs it again on fresh
 * ones. A port that must refuse connections is `REFUSED_PORT`. Nothing
 * else in the tree may choose a port: test/ports-are-never-picked.test.ts
 * checks that.
 */

/**
 * A port on which loopback connections are refused: below the kernel's
 * ephemeral range, so `listen(0)` never hands it out, and binding it needs
 * privileges nothing here uses. Not on the Fetch standard's list of blocked
 * ports (port 1 is), so `fetch` reaches it and gets ECONNREFUSED.
 */
export const REFUSED_PORT = 2

/** `http://127.0.0.1:2`: an upstream, IdP or probe target where nothing listens. */
export const REFUSED_URL = `http://127.0.0.1:${REFUSED_PORT}`

/**
 * Whether an error says a port was taken: Node's own `EADDRINUSE`, or a
 * child process that wrote so (redis-server: "Address already in use").
 */
export function isAddressInUse(err: unknown): boolean {
  if ((err as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE') return true
  return err instanceof Error && /EADDRINUSE|address already in use/i.test(err.message)
}

/** An error a helper throws when a child process reports that its port was taken. */
export function addressInUse(message: string): Error {
  return Object.assign(new Error(message), { code: 'EADDRINUSE' })
}

export interface FreePortOptions {
  /** Highest acceptable port, e.g. for a Redis Cluster node whose bus listens 10 000 above it. */
  readonly max?: number
  /** Attempts before the last EADDRINUSE is thrown. Default 8. */
  readonly attempts?: number
}

/**
 * A candidate: a port that was free a moment ago. Deliberately not exported;
 * only `onFreePorts` may use it, because it retries when the candidate is
 * taken before `start` binds it.
 */
function candidate(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

async function candidates(count: number, max: number): Promise<number[]> {
  const ports = new Set<number>()
  while (ports.size < count) {
    const port = await candidate()
    if (port <= max) ports.add(port)
  }
  return [...ports]
}

/**
 * Runs `start` on `count` distinct ports that were free a moment ago. Under
 * load another process can bind one between the probe and `start`'s listen;
 * on EADDRINUSE (see `isAddressInUse`) `start`, which must close what it
 * opened, runs again on fresh ports, so a gateway whose public URL names
 * its port still gets that port. Any other failure is thrown at once.
 */
export async function onFreePorts<T>(
  count: number,
  start: (ports: number[]) => Promise<T>,
  options: FreePortOptions = {},
): Promise<T> {
  const attempts = options.attempts ?? 8
  for (let attempt = 1; ; attempt++) {
    const ports = await candidates(count, options.max ?? 65_535)
    try {
      return await start(ports)
    } catch (err) {
      if (!isAddressInUse(err) || attempt >= attempts) throw err
    }
  }
}

/** `onFreePorts` for one port. */
export function onFreePort<T>(
  start: (port: number) => Promise<T>,
  options: FreePortOptions = {},
): Promise<T> {
  return onFreePorts(1, ([port]) => start(port!), options)
}

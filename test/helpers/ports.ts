import { createServer } from 'node:net'

/** A port that was free a moment ago, for servers whose URL must be known before they start. */
export function freePort(): Promise<number> {
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

/**
 * Runs `start` on `count` ports that were free a moment ago. Under load
 * another process can bind one between the probe and `start`'s listen; on
 * EADDRINUSE `start`, which must close what it opened, runs again on fresh
 * ports, so a gateway whose public URL names its port still gets that port.
 */
export async function onFreePorts<T>(count: number, start: (ports: number[]) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const ports = await Promise.all(Array.from({ length: count }, () => freePort()))
    try {
      return await start(ports)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 5) throw err
    }
  }
}

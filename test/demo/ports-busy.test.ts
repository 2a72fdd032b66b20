import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type Server } from 'node:net'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { typescriptFlags } from '../helpers/child-node.js'
import { addressInUse, onFreePorts } from '../helpers/ports.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

async function occupied(): Promise<{ server: Server; port: number }> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, port: (server.address() as { port: number }).port }
}

async function demo(env: Record<string, string>) {
  const child = spawn(process.execPath, [...typescriptFlags, 'demo/run.ts'], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  child.stdout.resume()
  const [code] = await once(child, 'exit')
  return { code: code as number, lines: stderr.split('\n').filter((l) => l.startsWith('demo:')), stderr }
}

const variables = ['IDP_PORT', 'PORT', 'METRICS_PORT'] as const
for (const variable of variables) {
  t.test(`a busy ${variable}: one line naming the override, exit 1, no stack trace`, async (t) => {
    const busy = await occupied()
    t.teardown(() => busy.server.close())
    // The other two ports must be free when the demo binds them; should one
    // be taken meanwhile, the demo names it and the run is repeated.
    const others = variables.filter((other) => other !== variable)
    const r = await onFreePorts(others.length, async (ports) => {
      const env: Record<string, string> = { [variable]: String(busy.port) }
      others.forEach((other, i) => {
        env[other] = String(ports[i])
      })
      const r = await demo(env)
      if (others.some((other) => r.lines.some((line) => line.includes(`choose another with ${other}`))))
        throw addressInUse(r.lines.join('\n'))
      return r
    })
    t.equal(r.code, 1)
    t.same(r.lines, [
      `demo: port ${busy.port} is in use; choose another with ${variable}, e.g. ${variable}=${busy.port + 10} npm run demo`,
    ])
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
    t.notMatch(r.stderr, /EADDRINUSE/, 'no raw error')
  })
}

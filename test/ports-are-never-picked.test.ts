/**
 * `npm test` failed now and then with `listen EADDRINUSE`: a helper bound
 * port 0, read the port, closed the server and handed the number on, and
 * another process took the port before the real server bound it. The rule
 * since: a server binds port 0 and reports its port, or, where the port
 * must be known first, it starts inside `onFreePorts`, which starts it again
 * on fresh ports when the bind loses that race (test/helpers/ports.ts).
 * This test reads the whole tree for the ways back to the old race.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = fileURLToPath(new URL('..', import.meta.url))
const HOME = 'test/helpers/ports.ts'

/** Every TypeScript file of the folders that start servers in tests, the demo and the bench. */
function sources(): string[] {
  const files: string[] = []
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith('.ts')) files.push(relative(root, path))
    }
  }
  for (const dir of ['test', 'bench', 'demo', 'dev', 'scripts']) walk(join(root, dir))
  return files
}

/** What in `text` chooses a port to be bound later, or binds a fixed one; empty when nothing does. */
export function pickedPorts(text: string): string[] {
  const found: string[] = []
  const rules: [RegExp, string][] = [
    [/\b(freePort|getPort|pickPort|unusedPort|randomPort|availablePort)\s*\(/, 'a port-picking helper'],
    [/from ['"](get-port|portfinder|detect-port|find-free-port)['"]/, 'a port-picking package'],
    // The probe: a server closed with its port as the result, so its number outlives it.
    [/\.close\(\s*\(\)\s*=>\s*resolve\(\s*[\w.]*port\b/i, 'a server closed to hand its port on'],
    [/\.close\(\)[;\s]*return\s+[\w.]*port\b/i, 'a server closed to hand its port on'],
    [/\.listen\(\s*(\{[^}]*\bport:\s*)?[1-9]\d*\b/, 'a listen on a fixed port'],
    [/['"]--port['"],\s*['"][1-9]\d*['"]/, 'a child told a fixed port'],
    // A gateway restarted on the port an earlier one released: the same race.
    [/\bport:\s*[\w.]+\.config\.server\.port\b/, 'a listen on a port another server released'],
  ]
  for (const [pattern, what] of rules) {
    const match = pattern.exec(text)
    if (match) found.push(`${what}: ${match[0]}`)
  }
  return found
}

t.test('nothing in the tree picks a port to bind later, or binds a fixed one', async (t) => {
  const files = sources()
  t.ok(files.length > 100, `${files.length} files read`)
  for (const file of files) {
    if (file === HOME || file === 'test/ports-are-never-picked.test.ts') continue
    t.same(pickedPorts(readFileSync(join(root, file), 'utf8')), [], file)
  }
})

t.test('the ports helper hands out no bare port number, only the retrying start', async (t) => {
  const ports = await import('./helpers/ports.js')
  t.same(Object.keys(ports).sort(), [
    'REFUSED_PORT',
    'REFUSED_URL',
    'addressInUse',
    'isAddressInUse',
    'onFreePort',
    'onFreePorts',
  ])
  // Its own probe is the one allowed, because only onFreePorts calls it.
  t.ok(pickedPorts(readFileSync(join(root, HOME), 'utf8')).length > 0, 'the rules see the probe there')
})

t.test('the rules catch the helper that caused the flake, and what it was used for', async (t) => {
  const before = `export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}`
  t.same(pickedPorts(before).length, 2, 'the helper by name and by shape')
  t.ok(pickedPorts("const port = await freePort()\nawait app.listen({ host: '127.0.0.1', port })").length)
  t.ok(pickedPorts("await app.listen({ host: '127.0.0.1', port: 3000 })").length, 'a fixed port')
  t.ok(pickedPorts("spawn('redis-server', ['--port', '6380'])").length, 'a child on a fixed port')
  t.ok(
    pickedPorts(
      "await first.gateway.close()\nawait app.listen({ host: '127.0.0.1', port: first.config.server.port })",
    ).length,
    'a restart on the released port',
  )
  t.same(pickedPorts("await app.listen({ host: '127.0.0.1', port: 0 })"), [], 'port 0 is fine')
  t.same(pickedPorts('await onFreePort(async (port) => start(port))'), [], 'so is the retrying start')
})

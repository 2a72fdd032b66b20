import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const read = (path: string) => readFileSync(join(root, path), 'utf8')
const lane = join(root, 'test/fast-lane.ts')

/** What needs a peer process, or spawns one: none of it belongs in the fast lane. */
const PEER =
  /\b(startStack|startScriptedStack|startAudienceStack|startReplicaSet|startDevIdp|startRedis|chromium)\b|dev\/idp\.js|redis-topology\.js|playwright-core|node:child_process/

const imports = (file: string) =>
  [...readFileSync(file, 'utf8').matchAll(/^import '(\.{1,2}\/[^']+)\.js'$/gm)].map(([, spec]) =>
    join(dirname(file), `${spec}.ts`),
  )

/** The module and every local module it imports under test/ and dev/, transitively. */
function localModules(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen
  seen.add(file)
  for (const [, spec] of readFileSync(file, 'utf8').matchAll(/from '(\.{1,2}\/[^']+)\.js'/g)) {
    const target = join(dirname(file), `${spec}.ts`)
    const where = relative(root, target)
    if (where.startsWith('test/') || where.startsWith('dev/')) localModules(target, seen)
  }
  return seen
}

t.test('the fast lane runs only tests that start no IdP, Redis or browser', async (t) => {
  const files = imports(lane)
  t.ok(files.length >= 20, `${files.length} files in the fast lane`)
  for (const file of files) {
    const name = relative(root, file)
    t.ok(existsSync(file) && name.endsWith('.test.ts'), `${name} is a test npm test runs too`)
    // This file names the peers it looks for.
    if (file === fileURLToPath(import.meta.url)) continue
    const peers = [...localModules(file)].filter((m) => PEER.test(readFileSync(m, 'utf8')))
    t.same(
      peers.map((m) => relative(root, m)),
      [],
      `${name} starts no peer`,
    )
  }
})

t.test('npm run test:unit runs the fast lane; npm test runs every test file', async (t) => {
  const pkg = JSON.parse(read('package.json')) as {
    scripts: Record<string, string>
    tap: { include: string[] }
  }
  t.equal(pkg.scripts['test:unit'], 'tap test/fast-lane.ts')
  t.equal(pkg.scripts.test, 'tap')
  t.same(pkg.tap.include, ['test/**/*.test.ts'])
})

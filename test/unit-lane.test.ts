/**
 * The fast lane is a rule, not a list (test/helpers/lanes.ts): this checks
 * the rule both ways. Every file the lane runs loads nothing that starts a
 * peer, and every test file that loads nothing that starts a peer is in the
 * lane, so that a new unit test cannot be left out of it, silently or not.
 */
import { readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import t from 'tap'
import {
  forbidChildProcesses,
  loadedSpecifiers,
  PEERS,
  peersOf,
  ROOT,
  testFiles,
  unitTests,
} from './helpers/lanes.js'

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8')
const name = (file: string) => relative(ROOT, file)

t.test('every file of the fast lane starts no IdP, Redis, browser or child process', async (t) => {
  const lane = unitTests()
  t.ok(lane.length >= 45, `${lane.length} files in the fast lane`)
  for (const file of lane) t.same(peersOf(file), [], `${name(file)} starts no peer`)
})

t.test(
  'every test file that starts no peer is in the fast lane; each other one names its peer',
  async (t) => {
    const lane = new Set(unitTests())
    const all = testFiles()
    t.ok(all.length > lane.size, `${all.length} test files, ${lane.size} of them unit tests`)
    for (const file of all) {
      const peers = peersOf(file)
      if (lane.has(file)) continue
      t.ok(
        peers.length > 0 && peers.every((chain) => PEERS.has(chain.at(-1)!)),
        `${name(file)} is out of the lane for ${peers[0]?.join(' → ')}`,
      )
    }
    // Known answers, one per kind of peer, through a helper each.
    const out = (path: string) => !lane.has(join(ROOT, path))
    t.ok(out('test/server/login-flow.test.ts'), 'a real IdP (startStack)')
    t.ok(out('test/e2e/spa-in-chromium.test.ts'), 'Chromium')
    t.ok(out('test/session/redis-store.test.ts'), 'redis-server')
    t.ok(out('test/bench/peer-port-taken.test.ts'), 'a child process, through bench/')
    t.ok(!out('test/errors.test.ts') && !out('test/oidc/client-auth.test.ts'), 'and unit tests are in')
  },
)

t.test('the lane runs what the rule finds; no list of test files is kept by hand', async (t) => {
  const entry = read('test/unit-lane.ts')
  t.match(
    entry,
    /const files = longestFirst\(unitTests\(\)\)\n\s*for \(const \[index, file\] of files\.entries\(\)\) \{/,
  )
  t.match(entry, /await import\(pathToFileURL\(file\)\.href\)/)
  t.notMatch(entry, /\.test\.(js|ts)['"]/, 'the entry names no test file')
  const pkg = JSON.parse(read('package.json')) as {
    scripts: Record<string, string>
    tap: { include: string[] }
  }
  const workers = pkg.scripts['test:unit']!.split(' ').slice(1)
  t.equal(pkg.scripts['test:unit']!.split(' ')[0], 'tap')
  t.ok(workers.length >= 2, 'workers side by side')
  for (const worker of workers) {
    t.match(worker, /^test\/unit-lane\/worker-\d+\.ts$/)
    t.match(read(worker), /await runUnitLane\(\)/, `${worker} runs the lane`)
  }
  t.same(pkg.tap.include, ['test/**/*.test.ts'], 'npm test runs every test file, those of the lane too')
})

t.test(
  'what a module loads: imports, re-exports, literal dynamic imports and requires, not types',
  async (t) => {
    const source = [
      "import t from 'tap'",
      "import type { Stack } from './helpers/stack.js'",
      "export type { Thing } from './types.js'",
      'import {',
      '  a,',
      '  type B,',
      "} from '../dev/idp.js'",
      "import './side-effect.js'",
      "export { c } from './c.js'",
      "const lazy = await import('./lazy.js')",
      // Spelled apart, or the walk would take this file for one that loads a browser.
      `const cjs = ${'require'}('playwright-core')`,
      'const named = await import(`${base}.js`)',
    ].join('\n')
    t.same(loadedSpecifiers(source).sort(), [
      '../dev/idp.js',
      './c.js',
      './lazy.js',
      './side-effect.js',
      'playwright-core',
      'tap',
    ])
  },
)

t.test('in the lane, a child process the walk missed fails the test that starts it', async (t) => {
  // Named at run time, as the walk cannot see: what the guard is for. Through
  // the ES module namespace, as a test's `import { spawn }` binds to it.
  const name = 'node:child_process'
  const childProcess = (await import(name)) as typeof import('node:child_process')
  const spawnSync = childProcess.spawnSync
  const restore = forbidChildProcesses()
  t.teardown(restore)
  t.throws(() => childProcess.spawnSync('true'), /a unit test started a child process \(spawnSync true\)/)
  restore()
  t.equal(childProcess.spawnSync, spawnSync, 'and undone after')
})

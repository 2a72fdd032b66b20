/**
 * Which test files are unit tests: a rule, not a list. A test file is a
 * unit test when nothing it loads starts a peer: neither the file nor any
 * module of this checkout it imports, transitively (helpers, dev/, bench/,
 * src/), imports one of `PEERS`. An IdP is oidc-provider in process; Redis,
 * Chromium, LemonLDAP::NG and CLI runs are child processes. A new test file
 * that starts none joins `npm run test:unit` by being written; one that
 * imports a helper that starts a peer leaves it the same way.
 *
 * `npm run test:unit` (test/unit-lane.ts, two workers) imports what `unitTests()` finds;
 * test/unit-lane.test.ts checks the rule both ways.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** The modules that start a peer, and which. */
export const PEERS: ReadonlyMap<string, string> = new Map([
  ['node:child_process', 'a child process (redis-server, Chromium, a CLI run, podman)'],
  ['child_process', 'a child process (redis-server, Chromium, a CLI run, podman)'],
  ['oidc-provider', 'an IdP'],
  ['playwright-core', 'a browser'],
])

/**
 * Every specifier a module loads when it runs: static imports and
 * re-exports, side-effect imports, and dynamic imports and requires of a
 * literal.
 * `import type` and `export type` load nothing and are left out.
 */
export function loadedSpecifiers(source: string): string[] {
  const specs: string[] = []
  const statements = /(?:^|[\n;])\s*(?:import|export)\s+(type\s+)?[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g
  for (const [, typeOnly, spec] of source.matchAll(statements)) if (!typeOnly) specs.push(spec!)
  for (const [, spec] of source.matchAll(/(?:^|[\n;])\s*import\s*['"]([^'"]+)['"]/g)) specs.push(spec!)
  for (const [, spec] of source.matchAll(/\b(?:import|require)\(\s*['"]([^'"]+)['"]\s*\)/g)) specs.push(spec!)
  return specs
}

/** A relative specifier as the file it names: TypeScript sources are imported as `.js`. */
function resolveLocal(from: string, spec: string): string | undefined {
  const target = join(dirname(from), spec)
  if (target.endsWith('.js') && existsSync(`${target.slice(0, -3)}.ts`)) return `${target.slice(0, -3)}.ts`
  return existsSync(target) ? target : undefined
}

interface Edges {
  readonly peers: readonly string[]
  readonly locals: readonly string[]
}

const parsed = new Map<string, Edges>()
/** What one module loads: peers by name, and local modules by path. Each module is read once. */
function edgesOf(module: string): Edges {
  let edges = parsed.get(module)
  if (edges === undefined) {
    const specs = loadedSpecifiers(readFileSync(module, 'utf8'))
    edges = {
      peers: specs.filter((spec) => PEERS.has(spec)),
      locals: specs
        .filter((spec) => spec.startsWith('.'))
        .map((spec) => resolveLocal(module, spec))
        .filter((target): target is string => target !== undefined && /\.[cm]?[jt]s$/.test(target)),
    }
    parsed.set(module, edges)
  }
  return edges
}

/** What `file` loads that starts a peer, as chains `file → module → … → peer`; empty for a unit test. */
export function peersOf(file: string): string[][] {
  const found: string[][] = []
  const seen = new Set<string>()
  const walk = (module: string, chain: string[]) => {
    if (seen.has(module)) return
    seen.add(module)
    const { peers, locals } = edgesOf(module)
    for (const peer of peers) found.push([...chain, peer])
    for (const target of locals) walk(target, [...chain, relative(ROOT, target)])
  }
  walk(file, [relative(ROOT, file)])
  return found
}

/** Every test file `npm test` runs (tap's `include`), as absolute paths, sorted. */
export function testFiles(): string[] {
  return readdirSync(join(ROOT, 'test'), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.test.ts') && !file.split('/').includes('node_modules'))
    .map((file) => join(ROOT, 'test', file))
    .sort()
}

/** The test files that start no peer: the fast lane. */
export function unitTests(): string[] {
  return testFiles().filter((file) => peersOf(file).length === 0)
}

const SPAWNERS = ['spawn', 'spawnSync', 'fork', 'exec', 'execSync', 'execFile', 'execFileSync'] as const

/**
 * Makes every way to start a child process throw in this process, for the
 * fast lane: a peer the import walk cannot see (a module named at run time)
 * fails the lane instead of slowing it. Returns what undoes it.
 */
export function forbidChildProcesses(): () => void {
  const childProcess = process.getBuiltinModule('node:child_process') as unknown as Record<string, unknown>
  const saved = SPAWNERS.map((name) => [name, childProcess[name]] as const)
  for (const name of SPAWNERS) {
    childProcess[name] = (command: unknown) => {
      throw new Error(
        `a unit test started a child process (${name} ${String(command)}): test/helpers/lanes.ts, the rule of the fast lane, did not see it coming; import what starts it statically`,
      )
    }
  }
  // ES module bindings of a builtin follow its CommonJS exports only when told to.
  syncBuiltinESMExports()
  return () => {
    for (const [name, value] of saved) childProcess[name] = value
    syncBuiltinESMExports()
  }
}

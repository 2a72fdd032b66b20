import { execFileSync, spawnSync } from 'node:child_process'
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import {
  describeEngines,
  enginesRange,
  nodeRefusal,
  parseEngines,
  satisfies,
} from '../../src/cli/supported-node.js'
import { buildTree } from '../helpers/build.js'
import { typescriptFlags, withoutCoverage } from '../helpers/child-node.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } }
const RANGE = '^22.11.0 || >=24.11.0'

t.test('the range: 22 from 22.11, and 24.11 on, whatever comes after', async (t) => {
  const cases: [string, boolean][] = [
    ['20.20.2', false],
    ['v20.20.2', false],
    ['22.10.9', false],
    ['22.11.0', true],
    ['22.20.5', true],
    ['23.11.0', false],
    ['24.10.0', false],
    ['24.11.0', true],
    ['v24.22.3', true],
    ['25.0.0', true],
    ['26.3.1', true],
    ['not a version', false],
  ]
  for (const [version, ok] of cases) t.equal(satisfies(version, RANGE), ok, `${version}: ${ok}`)
})

t.test('package.json engines is the range checked, in a form the check reads', async (t) => {
  t.equal(enginesRange(), pkg.engines.node)
  t.doesNotThrow(() => parseEngines(pkg.engines.node))
  t.equal(describeEngines(RANGE), 'Node 22 from 22.11.0, or Node 24.11.0 and later')
  t.throws(() => parseEngines('>=22 <23'), /unsupported engines range ">=22 <23"/)
  t.throws(() => parseEngines('~22.11.0'), /unsupported engines range/)
})

t.test('an unsupported Node gets one line naming the supported lines; a supported one none', async (t) => {
  const line = nodeRefusal('20.20.2', RANGE)
  t.equal(
    line,
    'gatehouse: Node 20.20.2 is not supported; use Node 22 from 22.11.0, or Node 24.11.0 and later (package.json engines: ^22.11.0 || >=24.11.0)',
  )
  t.notMatch(line, /\n/)
  t.equal(nodeRefusal('24.11.0', RANGE), undefined)
  t.equal(nodeRefusal(), undefined, `this Node, ${process.version}, is supported`)
})

/** Node flags that make the child believe it is `version`: process.versions is what the check reads. */
const pretend = (version: string) => [
  '--import',
  `data:text/javascript,Object.defineProperty(process.versions,"node",{value:${JSON.stringify(version)}})`,
]

function runEntry(
  entry: string,
  flags: readonly string[],
  args: readonly string[] = [],
  node = process.execPath,
  env: NodeJS.ProcessEnv = process.env,
) {
  const ran = spawnSync(node, [...flags, join(root, entry), ...args], {
    cwd: root,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { code: ran.status, stdout: ran.stdout, stderr: ran.stderr }
}

const ONE_LINE =
  /^gatehouse: Node 20\.\d+\.\d+ is not supported; use Node 22 from 22\.11\.0, or Node 24\.11\.0 and later \(package\.json engines: [^\n]+\)\n$/

for (const entry of ['src/cli/index.ts', 'demo/index.ts']) {
  t.test(`${entry} on a Node it believes is 20: the one line, exit 1, nothing started`, async (t) => {
    const refused = runEntry(entry, [...pretend('20.20.2'), ...typescriptFlags], ['start'])
    t.equal(refused.code, 1)
    t.match(refused.stderr, ONE_LINE)
    t.equal(refused.stdout, '')
    // The control: the same entry on the real version goes on past the check.
    if (entry === 'src/cli/index.ts') {
      const ok = runEntry(entry, typescriptFlags, ['--version'])
      t.equal(ok.code, 0)
      t.equal(ok.stderr, '')
      t.match(ok.stdout, /^\d+\.\d+\.\d+\n$/)
    }
  })
}

/** A Node 20 binary: $GATEHOUSE_NODE20 (.ci/run sets it), else one on PATH or in /usr/local/bin or /usr/bin. */
function node20(): string | undefined {
  const candidates = [
    process.env.GATEHOUSE_NODE20,
    ...(process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'node')),
    '/usr/local/bin/node',
    '/usr/bin/node',
  ]
  for (const candidate of new Set(candidates)) {
    if (!candidate) continue
    try {
      accessSync(candidate, constants.X_OK)
      const version = execFileSync(candidate, ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim()
      if (version.startsWith('v20.')) return candidate
    } catch {}
  }
  return undefined
}

const old = node20()
t.test(
  'the built CLI and the demo on a real Node 20: the one line, exit 1',
  {
    skip:
      old || process.env.CI
        ? false
        : 'no Node 20 on this machine (.ci/run provides one; with CI set this test never skips)',
  },
  async (t) => {
    t.ok(old, 'a Node 20 binary: set GATEHOUSE_NODE20 or put one on PATH')
    const tree = mkdtempSync(join(tmpdir(), 'gatehouse-node20-'))
    t.teardown(() => rmSync(tree, { recursive: true, force: true }))
    buildTree(tree)
    const control = spawnSync(process.execPath, [join(tree, 'dist/cli/index.js'), '--version'], {
      encoding: 'utf8',
      timeout: 60_000,
    })
    t.match(control.stdout, /^\d+\.\d+\.\d+\n$/, `the build runs on ${process.version}: ${control.stderr}`)
    const cli = spawnSync(old!, [join(tree, 'dist/cli/index.js'), 'start'], {
      encoding: 'utf8',
      timeout: 60_000,
    })
    t.equal(cli.status, 1, 'gatehouse start exits 1')
    t.match(cli.stderr, ONE_LINE)
    t.equal(cli.stdout, '')
    // tap's loader is for this Node; Node 20 loads the demo with tsx, its coverage unrecorded.
    const demo = runEntry('demo/index.ts', ['--import', 'tsx'], [], old!, withoutCoverage())
    t.equal(demo.code, 1, 'the demo exits 1')
    t.match(demo.stderr, ONE_LINE)
  },
)

import { existsSync, readFileSync } from 'node:fs'
import t from 'tap'
import { buildGateway, ConfigError, loadConfig, parseConfig, start } from '../src/index.js'

const root = new URL('../', import.meta.url)
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
  main: string
  types: string
  exports: Record<string, string | Record<string, string>>
}

/** The source `tsc -p tsconfig.build.json` compiles to a dist/ path (rootDir src, outDir dist). */
const sourceOf = (target: string) =>
  target.replace(/^\.?\/?dist\//, 'src/').replace(/(\.d)?\.js$|\.d\.ts$/, '.ts')

t.test('main, types and exports name files the build produces', async (t) => {
  const targets = [
    pkg.main,
    pkg.types,
    ...Object.values(pkg.exports).flatMap((v) => (typeof v === 'string' ? [v] : Object.values(v))),
  ].filter((target) => target.includes('dist/'))
  t.ok(targets.length >= 4, targets.join(', '))
  for (const target of targets)
    t.ok(existsSync(new URL(sourceOf(target), root)), `${target} <- ${sourceOf(target)}`)
})

t.test('the package entry exports the public API', async (t) => {
  for (const fn of [buildGateway, start, loadConfig, parseConfig, ConfigError])
    t.type(fn, 'function', fn.name)
  t.throws(() => parseConfig('routes: []', 'x.yaml', {}), ConfigError)
})

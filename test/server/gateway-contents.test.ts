import { readFileSync } from 'node:fs'
import t from 'tap'

/**
 * `buildGateway` is the table of contents of the app: a reader asking
 * "where is X hooked in?" finds a named plugin there and opens its file.
 * These bounds keep it from growing back into one function that wires
 * everything itself.
 */
const source = readFileSync(new URL('../../src/server/gateway.ts', import.meta.url), 'utf8')

const MODULE = /^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm

t.test('gateway.ts stays under 120 lines', async (t) => {
  const lines = source.split('\n').length
  t.ok(lines < 120, `gateway.ts has ${lines} lines; move wiring into a named plugin`)
})

t.test('gateway.ts imports at most 10 modules', async (t) => {
  const modules = new Set([...source.matchAll(MODULE)].map((m) => (m[1] ?? m[2])!))
  t.ok(modules.size > 0, 'the count sees the imports')
  t.ok(modules.size <= 10, `gateway.ts imports ${modules.size} modules: ${[...modules].join(', ')}`)
})

t.test('each part is registered as a plugin, by name', async (t) => {
  for (const part of ['errorAnswers', 'observability', 'services', 'draining', 'ownRoutes', 'proxy'])
    t.match(source, new RegExp(`app\\.register\\(${part}\\b`), part)
})

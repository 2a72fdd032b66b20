import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import {
  errorCatalogue,
  gatehouseError,
  isGatehouseError,
  logCatalogue,
  retryAfterFor,
  retryAfterOf,
  withRetryAfter,
} from '../src/errors.js'

t.test('every error code is documented in docs/errors.md', async (t) => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8')
  for (const code of Object.keys(errorCatalogue)) t.match(doc, `\`${code}\``, code)
  for (const code of Object.keys(logCatalogue)) t.match(doc, `\`${code}\``, code)
  t.match(doc, 'GATEHOUSE_ERR_CONFIG')
})

// The tables give each code's status, `error` and message as the catalogue
// has them: five log codes' messages once read otherwise there, untested.
t.test("docs/errors.md's rows say what the catalogue says", async (t) => {
  const rows = new Map<string, string[]>()
  for (const line of readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8').split('\n')) {
    const cells = line.split(' | ')
    const code = /^\| `(GATEHOUSE_[A-Z0-9_]+)`$/.exec(cells[0] ?? '')?.[1]
    if (code) rows.set(code, cells)
  }
  for (const [code, spec] of Object.entries(errorCatalogue)) {
    const row = rows.get(code)
    if (!t.ok(row, `${code} has a row`) || !row) continue
    t.same(row.slice(1, 4), [String(spec.status), `\`${spec.error}\``, spec.message], code)
  }
  for (const [code, spec] of Object.entries(logCatalogue)) {
    const row = rows.get(code)
    if (!t.ok(row, `${code} has a row`) || !row) continue
    t.same(row.slice(1, 3), [spec.level, spec.message], code)
  }
})

t.test('catalogue errors carry code, status and a message', async (t) => {
  const err = gatehouseError('GATEHOUSE_ERR_SESSION_EXPIRED')
  t.equal(err.code, 'GATEHOUSE_ERR_SESSION_EXPIRED')
  t.equal(err.statusCode, 401)
  t.equal(err.message, errorCatalogue.GATEHOUSE_ERR_SESSION_EXPIRED.message)
  t.ok(isGatehouseError(err))
  t.notOk(isGatehouseError(new Error('x')))
  t.equal(gatehouseError('GATEHOUSE_ERR_LOGIN_FAILED', 'custom').message, 'custom')
  for (const [code, spec] of Object.entries(errorCatalogue)) {
    if (spec.status === 503) t.ok('retryAfter' in spec, `${code} tells clients when to retry`)
  }
})

t.test(
  "an error's own Retry-After is whole seconds, at least 1, and only where the catalogue has one",
  async (t) => {
    const code = 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE'
    const catalogue = retryAfterOf(code)
    t.equal(retryAfterFor(gatehouseError(code)), catalogue, 'none of its own: the catalogue value')
    t.equal(retryAfterFor(withRetryAfter(gatehouseError(code), 30)), 30)
    t.equal(retryAfterFor(withRetryAfter(gatehouseError(code), 0.2)), 1, 'a part of a second is a second')
    t.equal(retryAfterFor(withRetryAfter(gatehouseError(code), 29.01)), 30, 'rounded up, never down')
    for (const seconds of [0, -5, Number.NaN, Number.POSITIVE_INFINITY])
      t.equal(retryAfterFor(withRetryAfter(gatehouseError(code), seconds)), catalogue, `${seconds}: ignored`)
    const forged = Object.assign(gatehouseError(code), { retryAfter: -3 })
    t.equal(retryAfterFor(forged), catalogue, 'a wait set by other means is checked too')
    const noWait = withRetryAfter(gatehouseError('GATEHOUSE_ERR_IDP_CLIENT_REFUSED'), 30)
    t.equal(retryAfterFor(noWait), undefined, 'a code that asks no wait gets none')
  },
)

t.test('every GATEHOUSE_ code in src/ is in a catalogue', async (t) => {
  const src = fileURLToPath(new URL('../src/', import.meta.url))
  // The config error is thrown before there is a server to answer; GATEHOUSE_CONFIG is an env var.
  const known = new Set([
    ...Object.keys(errorCatalogue),
    ...Object.keys(logCatalogue),
    'GATEHOUSE_ERR_CONFIG',
  ])
  known.add('GATEHOUSE_CONFIG')
  const strays: string[] = []
  for (const file of readdirSync(src, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.ts')) continue
    for (const [code] of readFileSync(join(src, file), 'utf8').matchAll(/GATEHOUSE_[A-Z_]+/g)) {
      if (!known.has(code)) strays.push(`${file}: ${code}`)
    }
  }
  t.same(strays, [])
})

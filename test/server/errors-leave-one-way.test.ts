import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

/**
 * One exit for errors: when two modules rendered them (JSON in the error
 * handler, HTML in the auth routes), they drifted, and a browser got JSON
 * from /auth/logout with the store down. Routes throw catalogue errors;
 * src/server/error-handler.ts alone renders them and marks the gateway's
 * own answers `no-store` and `nosniff`.
 */
const src = fileURLToPath(new URL('../../src', import.meta.url))
const files = (readdirSync(src, { recursive: true }) as string[])
  .filter((f) => f.endsWith('.ts'))
  .map((f) => ({
    path: relative(src, join(src, f)).split('\\').join('/'),
    text: readFileSync(join(src, f), 'utf8'),
  }))

const holders = (pattern: RegExp) => files.filter((f) => pattern.test(f.text)).map((f) => f.path)

t.test('only the error handler sets the error and not-found handlers', async (t) => {
  t.same(holders(/\.set(ErrorHandler|NotFoundHandler)\(/), ['server/error-handler.ts'])
})

t.test('only the error handler writes an { error, message } body or the error page', async (t) => {
  t.same(holders(/send\(\{\s*error\b/), ['server/error-handler.ts'])
  t.same(holders(/Sign in again/), ['server/error-handler.ts'])
})

t.test('no-store and nosniff are set in one place', async (t) => {
  t.same(holders(/'no-store'/), ['server/error-handler.ts'])
  t.same(holders(/'nosniff'/), ['server/error-handler.ts'])
})

import { readFileSync } from 'node:fs'
import t from 'tap'
import { errorCatalogue, gatehouseError, isGatehouseError } from '../src/errors.js'

t.test('every error code is documented in docs/errors.md', async (t) => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8')
  for (const code of Object.keys(errorCatalogue)) t.match(doc, `\`${code}\``, code)
  t.match(doc, 'GATEHOUSE_ERR_CONFIG')
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

import { readFileSync } from 'node:fs'
import t from 'tap'
import { renderSchema } from '../../src/config/json-schema.js'

t.test('schema/routes.schema.json is in step with the config schema (npm run schema)', async (t) => {
  const shipped = readFileSync(new URL('../../schema/routes.schema.json', import.meta.url), 'utf8')
  t.equal(shipped, renderSchema())
  const schema = JSON.parse(shipped)
  t.equal(schema.additionalProperties, false)
  // oidc or identityProviders: one of them, which the schema cannot say and check does (provider-rules.ts).
  // routes: optional since frontends: each frontend may list its own instead.
  t.same(schema.required.sort(), ['server', 'session'])
  t.match(
    readFileSync(new URL('../../routes.yaml', import.meta.url), 'utf8'),
    /^# yaml-language-server: \$schema=\.\/schema\/routes\.schema\.json/,
  )
})

t.test('docs/configuration.md is generated from the same schema (npm run schema)', async (t) => {
  const { renderReference } = await import('../../src/config/reference.js')
  const shipped = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8')
  t.equal(shipped, renderReference())
  for (const key of [
    'server.publicUrl',
    'session.store',
    'tokens.refreshBefore',
    'routes[].token',
    'metrics.port',
  ]) {
    t.match(shipped, `\`${key}\``, key)
  }
})

t.test(
  'every key of the reference says what it means; one without a description stops the render',
  async (t) => {
    const { renderReference } = await import('../../src/config/reference.js')
    const shipped = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8')
    const rows = shipped.split('\n').filter((line) => /^\| `/.test(line))
    t.ok(rows.length > 50, `${rows.length} keys`)
    for (const row of rows) t.notMatch(row, /\|\s*\|$/, row.split(' | ')[0]!)
    const undescribed = {
      type: 'object',
      properties: {
        logging: {
          type: 'object',
          description: 'Logs.',
          properties: { level: { type: 'string', default: 'info' } },
        },
      },
    }
    t.throws(() => renderReference(undescribed), /logging\.level has no description/)
  },
)

t.test('the reference marks each setting a reload refuses as needing a restart, and no other', async (t) => {
  const { RESTART_SETTINGS } = await import('../../src/config/reload-policy.js')
  const shipped = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8')
  const restart = RESTART_SETTINGS.map(([path]) => path)
  const rows = shipped.split('\n').filter((line) => /^\| `/.test(line))
  for (const row of rows) {
    const key = row.slice(3, row.indexOf('`', 3))
    const held = restart.some((path) => key === path || key.startsWith(`${path}.`))
    t.equal(row.includes('Needs a restart'), held, `${key}: ${held ? 'needs a restart' : 'reloads'}`)
  }
  for (const path of restart) t.match(shipped, `\`${path}\``, `${path} is named`)
})

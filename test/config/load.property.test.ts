import fc from 'fast-check'
import t from 'tap'
import { stringify } from 'yaml'
import { ConfigError } from '../../src/config/errors.js'
import { parseConfig } from '../../src/config/load.js'
import { anyCodePoints } from '../helpers/arbitraries.js'

const env = { OIDC_CLIENT_SECRET: 's', SESSION_SECRET: 'x'.repeat(32) }

function loadsOrExplains(text: string): boolean {
  try {
    parseConfig(text, 'gen.yaml', env)
    return true
  } catch (err) {
    return (
      err instanceof ConfigError && err.problems.length > 0 && err.problems.every((p) => p.message.length > 0)
    )
  }
}

t.test('no generated text crashes the loader', async (t) => {
  fc.assert(fc.property(anyCodePoints(300), loadsOrExplains), { numRuns: 2000 })
  t.pass('2000 random texts: a config or a ConfigError each time')
})

t.test('no generated YAML document crashes the loader', async (t) => {
  const keys = fc.constantFrom(
    'server',
    'oidc',
    'session',
    'routes',
    'path',
    'upstream',
    'token',
    'secret',
    'publicUrl',
    'issuer',
    'x',
  )
  const leaf = fc.oneof(
    fc.string(),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.double(),
    fc.constant('${MISSING}'),
  )
  const tree = fc.letrec((tie) => ({
    node: fc.oneof(
      { depthSize: 'small' },
      leaf,
      fc.array(tie('node'), { maxLength: 4 }),
      fc.dictionary(keys, tie('node'), { maxKeys: 5 }),
    ),
  })).node
  fc.assert(
    fc.property(tree, (doc) => loadsOrExplains(stringify(doc))),
    { numRuns: 2000 },
  )
  t.pass('2000 random documents: a config or a ConfigError each time')
})

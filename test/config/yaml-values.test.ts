import t from 'tap'
import { lineLocator, parseYaml } from '../../src/config/document.js'
import { parseConfig } from '../../src/config/load.js'
import { MAX_NESTING, MAX_NODES } from '../../src/config/yaml-scan.js'
import { CONFIG_ENV, configProblems, MINIMAL_CONFIG } from '../helpers/config-problems.js'

const env = CONFIG_ENV
const minimal = MINIMAL_CONFIG
/** The line `text` starts on when appended to `minimal`. */
const next = minimal.split('\n').length

const problems = (text: string) => configProblems(text, env)

const NODES = `the file holds more than ${MAX_NODES.toLocaleString('en')} nodes by here (keys, values, lists and mappings, an alias counted as all it brings in); a config needs a few thousand`
const NESTING = `nests lists and mappings more than ${MAX_NESTING} levels deep here; a config needs about 6`

t.test('1 MB of nesting, or of nodes, is refused at its line before it is parsed', async (t) => {
  // The probe's files: 500,000 levels took check 271 s; 340,000 items, and
  // 99 aliases of them, ran it out of memory after 138 s.
  const started = performance.now()
  t.same(problems(`${minimal}x-deep: ${'['.repeat(500_000)}${']'.repeat(500_000)}\n`), [
    `${next} : ${NESTING}`,
  ])
  t.same(
    problems(`${minimal}x-big: &big [${'{},'.repeat(340_000)}{}]\nx-refs: [${'*big,'.repeat(98)}*big]\n`),
    [`${next} : ${NODES}`],
  )
  t.ok(performance.now() - started < 2_000, 'in a pass over the text each')
})

t.test(
  'aliases that would expand past the node bound are refused at the alias, before any is expanded',
  async (t) => {
    // The probe's file in small: a list, and 99 aliases of it. Each alias was
    // expanded in full: 340,000 items ran the gateway out of memory.
    const items = 2_000
    const bomb = `x-big: &big [${'{}, '.repeat(items - 1)}{}]\nx-refs:\n${'  - *big\n'.repeat(99)}`
    const [found, ...more] = problems(minimal + bomb)
    t.same(more, [], 'one problem')
    const [, line, index] = /^(\d+) x-refs\[(\d+)\]: /.exec(found ?? '') ?? []
    t.equal(Number(line), next + 2 + Number(index), 'at the line of the alias that passes the bound')
    t.equal(found?.slice(found.indexOf(':') + 2), `the alias *big brings in 2,001 nodes: ${NODES}`)
  },
)

t.test('an alias inside the node it names is refused: it would hold itself', async (t) => {
  t.same(problems(`${minimal}x-loop: &loop\n  again: *loop\n`), [
    `${next + 1} x-loop.again: the alias *loop is inside the node it names, which would hold itself`,
  ])
})

t.test('nesting the text scan lets by is counted again in the document, aliases brought in', async (t) => {
  // A list at its key's column is a level the scan does not see
  // (yaml-scan.ts): each line below is two levels, a list and a mapping.
  let compact = 'x-deep:\n'
  for (let line = 0; line < 20; line++) compact += `${'  '.repeat(line)}- a:\n`
  const passing = (MAX_NESTING + 1 - 3) / 2 // the mapping of that line is level MAX_NESTING + 1
  t.same(problems(minimal + compact), [
    `${next + 1 + passing} x-deep[0]${'.a[0]'.repeat(passing)}: ${NESTING}`,
  ])

  const half = MAX_NESTING / 2 + 1
  const nested = (depth: number) => `${'{a: '.repeat(depth)}1${'}'.repeat(depth)}`
  t.same(
    problems(`${minimal}x-anchor: &half ${nested(half)}\nx-use: ${nested(half - 2).replace('1', '*half')}\n`),
    [
      `${next + 1} x-use${'.a'.repeat(half - 2)}: the alias *half brings in lists and mappings that ${NESTING}`,
    ],
  )
})

t.test('a tag other than YAML own is refused by name, at its option and line', async (t) => {
  const withSecret = (value: string) => minimal.replace('${OIDC_CLIENT_SECRET}', value)
  const at = '6 oidc.clientSecret'
  t.same(problems(withSecret('!vault secret/gatehouse')), [
    `${at}: the tag !vault is not supported: Gatehouse reads no tags but YAML's own (such as !!str, to keep a value as text); remove it`,
  ])
  t.same(problems(withSecret('!!binary c2VjcmV0')), [
    `${at}: the tag !!binary is not supported: Gatehouse reads no tags but YAML's own (such as !!str, to keep a value as text); remove it`,
  ])
  t.same(problems(withSecret('!!int not-a-number')), [
    `${at}: the tag !!int does not fit the value written after it`,
  ])
  const kept = parseConfig(
    minimal
      .replace('clientId: my-bff', 'clientId: !!str 123e4567')
      .replace('${OIDC_CLIENT_SECRET}', '! 0x1F'),
    'routes.yaml',
    env,
  )
  t.same([kept.oidc.clientId, kept.oidc.clientSecret], ['123e4567', '0x1F'], "YAML's own tags keep the text")
})

t.test('a merge key is refused with what to write instead', async (t) => {
  const merged = minimal.replace(
    'routes:\n  - path: /api/orders\n    upstream: http://orders:8080\n',
    'x-route: &route\n  upstream: http://orders:8080\nroutes:\n  - path: /api/orders\n    <<: *route\n',
  )
  t.same(problems(merged), [
    '13 routes[0]: << merge keys are not supported (YAML 1.2 has none): write the options out, or make the whole value an alias (*name)',
  ])
})

t.test('a key set twice is named by its option, with both lines', async (t) => {
  t.same(problems(minimal.replace('  clientId: my-bff\n', '  clientId: my-bff\n  clientId: other\n')), [
    '6 oidc.clientId: is set twice in one mapping (first on line 5); YAML would keep only the last',
  ])
  // YAML compares the nodes, so 1 and "1" differ; as options they are one.
  t.same(problems(`${minimal}x-params:\n  1: a\n  "1": b\n`), [
    `${next + 2} x-params.1: is set twice in one mapping (first on line ${next + 1}); YAML would keep only the last`,
  ])
})

t.test('a second document is named in our words, at its line', async (t) => {
  t.same(problems(`${minimal}---\nserver: {}\n`), [
    `${next} : a second YAML document starts here (after a --- or ... line); a config file is one document`,
  ])
})

t.test('a number YAML reads without its text is refused where the option takes text', async (t) => {
  const quote =
    'YAML reads this as a number, which loses the text as written (an exponent, 0x, 0o, .inf); quote the value'
  for (const id of ['123e4567', '12e3', '0x1F', '0o17', '.inf'])
    t.same(
      problems(minimal.replace('clientId: my-bff', `clientId: ${id}`)),
      [`5 oidc.clientId: ${quote}`],
      id,
    )
  const scopes = minimal.replace(
    'upstream: http://orders:8080',
    'upstream: http://orders:8080\n    scopes: [read, 1e3]',
  )
  t.same(problems(scopes), [`12 routes[0].scopes[1]: ${quote}`], 'in a list of text too')

  const numbers = parseConfig(
    minimal.replace('server:\n', 'server:\n  port: 0xBB8\n').replace('clientId: my-bff', 'clientId: "12e3"'),
    'routes.yaml',
    env,
  )
  t.equal(numbers.server.port, 3000, 'a number option takes the number')
  t.equal(numbers.oidc.clientId, '12e3', 'quoted, the text is kept')
  const keys = parseConfig(
    minimal.replace(
      '  clientId: my-bff\n',
      '  clientId: my-bff\n  authorizationParams:\n    0x1F: a\n    1e3: b\n',
    ),
    'routes.yaml',
    env,
  )
  t.same(keys.oidc.authorizationParams, { '0x1F': 'a', '1e3': 'b' }, 'a key is a name: its text is kept')
})

t.test('a number YAML reads without its text is refused where an alias brings it to text', async (t) => {
  // The anchor is on a number option, which takes the number; the alias
  // gave the client id "8080", not the 0x1F90 written: check said OK.
  const quote =
    'YAML reads this as a number, which loses the text as written (an exponent, 0x, 0o, .inf); quote the value'
  const aliased = minimal
    .replace('server:\n', 'server:\n  port: &port 0x1F90\n')
    .replace('clientId: my-bff', 'clientId: *port')
  t.same(problems(aliased), [`6 oidc.clientId: ${quote}`], 'at the alias')
  const inList = minimal
    .replace('server:\n', 'server:\n  port: &port 0x1F90\n')
    .replace('upstream: http://orders:8080', 'upstream: http://orders:8080\n    scopes: &s [read, *port]')
    .concat('  - path: /api/other\n    upstream: http://orders:8080\n    scopes: *s\n')
  t.same(
    problems(inList),
    [`13 routes[0].scopes[1]: ${quote}`, `16 routes[1].scopes[1]: ${quote}`],
    'inside what an alias names, at each alias',
  )
  const kept = parseConfig(
    minimal
      .replace('server:\n', 'server:\n  port: &port 0123\n')
      .replace('clientId: my-bff', 'clientId: *port'),
    'routes.yaml',
    env,
  )
  t.equal(kept.oidc.clientId, '0123', 'a plain decimal keeps its text through an alias')
})

t.test('a number past what a number holds is out of range, not "null"', async (t) => {
  const timeout = (value: string) =>
    problems(
      minimal.replace('upstream: http://orders:8080', `upstream: http://orders:8080\n    timeout: ${value}`),
    )
  t.same(timeout('1e309'), ['12 routes[0].timeout: 1e309 is out of range: no number is that large'])
  t.same(timeout('-.inf'), ['12 routes[0].timeout: -.inf is infinite; no option takes it'])
  t.same(timeout('.nan'), ['12 routes[0].timeout: .nan is not a number'])
})

t.test('a __proto__ key is refused at its line, never taken as the prototype of a copy', async (t) => {
  // Copied by `out[key] = …`, its options became inherited ones: read as
  // set, and seen by no unknown-option check (`check` said OK).
  t.same(problems(`${minimal}__proto__:\n  routes: []\n`), [`${next} : __proto__ is not an option`])
  t.same(
    problems(minimal.replace('  clientId: my-bff\n', '  clientId: my-bff\n  __proto__:\n    timeout: 1\n')),
    ['6 oidc: __proto__ is not an option'],
  )
})

t.test('a problem at each key of a large mapping is located in time linear in it', async (t) => {
  // Each problem's line was found by a search of its mapping's keys: a
  // mapping of 40,000 unknown options (within the node bound) took check
  // 23 s, 19 of them locating its problems, and at the bound more, near a
  // reload's 30 s. Indexed, it takes about 45 ms, and 380 ms on a loaded
  // CI machine; the bound sits far above both and far below the search's 19 s.
  const keys = 40_000
  const text = minimal.replace(
    '  clientId: my-bff\n',
    `  clientId: my-bff\n${Array.from({ length: keys }, (_, i) => `  k${i}: 1\n`).join('')}`,
  )
  const { doc, lineCounter } = parseYaml(text)
  const lineOf = lineLocator(doc!, lineCounter)
  const started = performance.now()
  const lines = Array.from({ length: keys }, (_, i) => lineOf(['oidc', `k${i}`, 'x']))
  const elapsed = performance.now() - started
  t.same([lines[0], lines.at(-1)], [6, 5 + keys], 'each at its key')
  t.ok(elapsed < 5_000, `${keys} problems located in ${Math.round(elapsed)} ms`)
  const found = problems(text)
  t.same(
    [found[0], found.at(-1)],
    ['6 oidc.k0: unknown option', `${5 + keys} oidc.k${keys - 1}: unknown option`],
  )
})

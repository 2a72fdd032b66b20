import t from 'tap'
import { syntaxProblems } from '../../src/config/problems.js'
import { CONFIG_ENV, configProblems, MINIMAL_CONFIG } from '../helpers/config-problems.js'

t.test(
  'a syntax error on a long line is reported at once: the line is searched for ${VAR} in one pass',
  async (t) => {
    // A minified JSON config is one line; searching it for an unquoted
    // `${VAR}` from each bracket in turn took 4 s at 1 MB; one pass takes
    // about 70 ms on a loaded CI machine, and the bound sits between the two.
    const routes = Array.from({ length: 20_000 }, (_, i) => ({ path: `/r${i}`, upstream: 'http://u' }))
    const line = JSON.stringify({ server: { publicUrl: 'https://app.example.com' }, routes }).slice(0, -1)
    const errors = Array.from({ length: 10 }, () => ({
      message: 'Flow map must end with a } at line 1, column 800000:',
      linePos: [{ line: 1 }] as const,
    }))
    const started = performance.now()
    const found = syntaxProblems(errors, line)
    const elapsed = performance.now() - started
    t.equal(found.length, 10)
    t.same(found[0], { path: '', line: 1, message: 'YAML syntax error: Flow map must end with a }' })
    t.ok(elapsed < 2_000, `${line.length} characters, 10 errors on the line: ${Math.round(elapsed)} ms`)
  },
)

t.test('the variable is still found after a bracket, outside quotes and comments', async (t) => {
  const hint = (line: string) =>
    syntaxProblems([{ message: 'Unexpected flow-map-start', linePos: [{ line: 1 }] }], line)[0]?.message
  const quoted = (variable: string) =>
    `YAML syntax error: Unexpected flow-map-start; inside [ ] or { } quote the variable: "${variable}"`
  t.equal(hint('scopes: [${SCOPE}]'), quoted('${SCOPE}'))
  t.equal(hint("a: {b: 'it''s', c: ${C}}"), quoted('${C}'), "past a quote's escape")
  t.equal(
    hint('a: "[x]" ${NOT}'),
    'YAML syntax error: Unexpected flow-map-start',
    'a bracket in quotes opens nothing',
  )
  t.equal(hint('a: [b] # ${NOT}'), 'YAML syntax error: Unexpected flow-map-start', 'nor one in a comment')
})

t.test('a line of many syntax errors is read in time linear in it, each error at its line', async (t) => {
  // YAML's pretty errors copy the line around each error into its message:
  // quadratic in a long line. `x: ]]]…` or `x: [,,,…]` of 100 KB, each
  // character an error, took about 25 s; of 1 MB, about an hour, in check
  // and at a start, within every bound of yaml-scan.ts. A wall-clock bound
  // would measure the machine instead (a loaded CI took 8 of a 10 s bound at
  // 100 KB), and so did a ratio of times at two lengths: 16 times the line,
  // bound 28, measured 26–27× in CPU time with the code linear, the short
  // line's few milliseconds all noise. So the reference is a valid line of
  // the same length, parsed in the same process beside it: in CPU time, the
  // errors cost 1–5 times as much when read in linear time, and 36–60 times
  // with the quadratic copy back (80,000 characters).
  const line = MINIMAL_CONFIG.split('\n').length
  const LENGTH = 80_000
  // Best of three, but a junk line stops once its best is within the bound:
  // a best can only fall, and nine reads of 80,000 characters, some 20 s of
  // CPU under coverage, outran tap's 120 s on a CI machine loaded 7-fold.
  const BOUND = 20
  const cpu = (text: string, enough: (best: number) => boolean = () => false) => {
    let best = Number.POSITIVE_INFINITY
    let found: string[] = []
    for (let round = 0; round < 3 && !enough(best); round++) {
      const started = process.cpuUsage()
      found = configProblems(text, CONFIG_ENV)
      const spent = process.cpuUsage(started)
      best = Math.min(best, (spent.user + spent.system) / 1_000)
    }
    return { best, found }
  }
  const valid = cpu(`${MINIMAL_CONFIG}x: [${'1,'.repeat(LENGTH / 2 - 1)}1]\n`)
  t.notMatch(valid.found.join('\n'), /syntax error/, 'the reference line is valid YAML')
  for (const junk of [(n: number) => ']'.repeat(n), (n: number) => `[${','.repeat(n)}]`]) {
    const { best, found } = cpu(`${MINIMAL_CONFIG}x: ${junk(LENGTH)}\n`, (best) => best / valid.best < BOUND)
    const ratio = best / valid.best
    t.ok(
      ratio < BOUND,
      `${junk(1)}: ${LENGTH} characters of errors took ${ratio.toFixed(1)}× the CPU time of a valid line as long (${Math.round(best)} against ${Math.round(valid.best)} ms)`,
    )
    t.ok(found.length > 1, `${found.length} problems`)
    t.match(
      found[0],
      new RegExp(`^${line} : YAML syntax error: Unexpected `),
      'at the line, without its context',
    )
  }
})

import { readFileSync } from 'node:fs'
import t from 'tap'
import { isCollection, isPair, parseDocument } from 'yaml'
import { MAX_NESTING, MAX_NODES, textBeyond } from '../../src/config/yaml-scan.js'

/** How deep the parsed document nests lists and mappings. */
function parsedDepth(text: string): number {
  const depth = (node: unknown): number =>
    isCollection(node)
      ? 1 +
        Math.max(
          0,
          ...node.items.map((item) =>
            isPair(item) ? Math.max(depth(item.key), depth(item.value)) : depth(item),
          ),
        )
      : 0
  return depth(parseDocument(text).contents)
}

/** The deepest nesting the scan sees: the least limit it lets through. */
function scannedDepth(text: string): number {
  let limit = 0
  while (textBeyond(text, { nesting: limit, nodes: MAX_NODES })?.bound === 'nesting') limit++
  return limit
}

t.test('the scan sees the nesting the parser builds, in the forms a config is written in', async (t) => {
  const texts: Record<string, string> = {
    'block mappings': 'a:\n  b:\n    c: 1\n  d: 2\ne: 3\n',
    'a list of mappings': 'routes:\n  - path: /a\n    tls:\n      cert: c\n  - path: /b\n',
    'lists in a line': '- - - - x\n',
    'JSON, which is YAML': JSON.stringify({ a: [{ b: { c: [1, 2, { d: 'x' }] } }] }),
    'flow in block': 'a:\n  b: [1, {c: [2]}]\n  d: {e: f}\n',
    'CRLF lines': 'a:\r\n  b:\r\n    c: 1\r\n',
    'anchors and tags': 'a: &x\n  b: [1]\nc: *x\nd: !!map\n  e: !!seq\n    - f\n',
    // None of these brackets or dashes open anything.
    'quoted text': 'a: "x: [ {"\nb: \'it\'\'s [\'\nc:\n  d: [e, "f]", {g: h}]\n',
    comments: 'a: # [[[\n  b: 1 # {{{\n  c: x#[[\n',
    'a block scalar': 'a:\n  b: |\n    [[[[[[\n    - - - - -\n  c: [1]\n',
    'plain text with brackets': 'a: x[1\nb: y{\nc:\n  d: e\n',
    'a multi-line quoted scalar': 'a: "line one\n  [[[[ line two"\nb:\n  c: 1\n',
    'the example config': readFileSync(new URL('../../routes.yaml', import.meta.url), 'utf8'),
    'the Kubernetes example': readFileSync(
      new URL('../../deploy/kubernetes/base/deployment.yaml', import.meta.url),
      'utf8',
    ),
  }
  for (const [name, text] of Object.entries(texts)) t.equal(scannedDepth(text), parsedDepth(text), name)
  // A list written at its key's column looks like a sibling: a level too
  // few each time. The parsed document is counted again (yaml-values.ts).
  const compact = 'a:\n- b:\n  - c:\n    - d: 1\n'
  t.ok(scannedDepth(compact) >= parsedDepth(compact) / 2, 'a list at its key column: at worst half')
})

t.test('500,000 levels of brackets (1 MB) are refused at once, at their line', async (t) => {
  const levels = 500_000
  const text = `server:\n  port: 3000\njunk: ${'['.repeat(levels)}${']'.repeat(levels)}\n`
  const started = performance.now()
  t.same(textBeyond(text), { bound: 'nesting', line: 3 })
  t.ok(performance.now() - started < 1_000, 'in one pass, not a parse')
  t.same(textBeyond(`junk:\n  ${'- '.repeat(levels)}x\n`), { bound: 'nesting', line: 2 }, 'or of dashes')
  const limit = `a: ${'{b: '.repeat(MAX_NESTING - 1)}1${'}'.repeat(MAX_NESTING - 1)}\n`
  t.same(textBeyond(limit), undefined, 'the limit itself')
  t.same(textBeyond(`x:\n  ${limit}`), { bound: 'nesting', line: 2 }, 'one level more')
})

t.test('a list past the node bound is refused at the line that passes it', async (t) => {
  const items = `junk:\n${'- 1\n'.repeat(MAX_NODES + 10)}`
  t.same(textBeyond(items), { bound: 'nodes', line: MAX_NODES + 1 })
  t.same(textBeyond(`junk: [${'1,'.repeat(MAX_NODES)}1]\n`), { bound: 'nodes', line: 1 })
  t.same(textBeyond(`junk: [${'1,'.repeat(MAX_NODES / 2)}1]\n`), undefined, 'half of it passes')
  t.same(
    textBeyond(`# ${'[['.repeat(MAX_NODES)}\n${'\n'.repeat(MAX_NODES)}a: 1\n`),
    undefined,
    'comments and blank lines hold no nodes',
  )
})

t.test('an anchor or a tag written against its bracket hides no nesting or nodes behind it', async (t) => {
  // An anchor's or a tag's name ends at a flow indicator (YAML 1.2 §6.9:
  // ns-anchor-char and ns-tag-char exclude `[]{},`); read to the next
  // space, `[&a[[[…]]]]` hid all its levels and `[&a[1,1,…]]` its nodes,
  // and check then parsed 1 MB of them: 11 s and 760 MB.
  const levels = 500_000
  for (const form of ['&a', '!!seq', '!t']) {
    const nested = `junk: [${form}${'['.repeat(levels)}${']'.repeat(levels)}]\n`
    const started = performance.now()
    t.same(textBeyond(nested), { bound: 'nesting', line: 1 }, `${form}[[[…`)
    t.ok(performance.now() - started < 1_000, 'in one pass, not a parse')
    t.same(
      textBeyond(`junk: [${form}[${'1,'.repeat(MAX_NODES)}1]]\n`),
      { bound: 'nodes', line: 1 },
      `${form}[1,1,…`,
    )
  }
  // In block context YAML refuses `&a[`, but parses on behind the error.
  t.same(textBeyond(`junk: &a${'['.repeat(levels)}${']'.repeat(levels)}\n`), { bound: 'nesting', line: 1 })
  const texts: Record<string, string> = {
    'anchors against brackets': 'a: [&x[1, {b: 2}], *x]\n',
    'tags against brackets': 'a: [!!seq[1], !!map{b: [2]}]\n',
    // A verbatim tag holds a URI, whose `,` and brackets close nothing.
    'a verbatim tag': 'a: !<tag:yaml.org,2002:seq> [1, [2]]\nb: [!<tag:yaml.org,2002:str> x]\n',
  }
  for (const [name, text] of Object.entries(texts)) t.equal(scannedDepth(text), parsedDepth(text), name)
})

t.test('a block scalar ends where YAML ends it: at a line no deeper than its mapping', async (t) => {
  // The content of `- a: |` is what is indented past `a`, not past the
  // line's `-`: a line at `a`'s column is the mapping's next key, whose
  // brackets the scan took for text. 1 MB of them held check for 6 s.
  const levels = 500_000
  const deep = `${'['.repeat(levels)}${']'.repeat(levels)}`
  t.same(textBeyond(`x:\n  - a: |\n    ${deep}: 1\n`), { bound: 'nesting', line: 3 }, 'a key at its column')
  t.same(
    textBeyond(`x:\n  - a: |\n      text\n    b: ${deep}\n`),
    { bound: 'nesting', line: 4 },
    'after its content',
  )
  const texts: Record<string, string> = {
    'a block scalar in a list of mappings':
      'routes:\n  - path: /a\n    pem: |\n      -----BEGIN [[[[\n      {{{\n    tls: {a: [1]}\n  - path: /b\n',
    'a block scalar as a list item': 'a:\n  - |\n    [[[[\n  - [1]\n',
    'a folded scalar with an indicator': 'a:\n  b: >2-\n     [[[ x\n  c: [1]\n',
    'a block scalar as an explicit value': '? a\n: |\n  [[[\nb: [1, [2]]\n',
  }
  for (const [name, text] of Object.entries(texts)) t.equal(scannedDepth(text), parsedDepth(text), name)
})

t.test('a document marker starts the scan afresh, whatever was open before it', async (t) => {
  // `---` (and `...`) at a line's start ends a document even inside a
  // quoted scalar, a flow collection or a block scalar; the scan read the
  // line as text, and YAML then parsed 1 MB of brackets behind it: 7 s.
  const levels = 500_000
  const deep = `${'['.repeat(levels)}${']'.repeat(levels)}`
  for (const before of ['', 'x: 1\n', 'x: "a\n', 'x: [a,\n', 'x: |\n  a\n', '%YAML 1.2\n', 'x: 1\n...\n'])
    t.same(
      textBeyond(`${before}--- ${deep}\n`),
      { bound: 'nesting', line: before.split('\n').length },
      JSON.stringify(before),
    )
  t.equal(scannedDepth('---\na: [1, [2]]\n...\n---\nb: {c: [3]}\n'), 3, 'each document on its own')
})

t.test('a stray closing bracket hides nothing after it', async (t) => {
  // YAML refuses `]` or `}` where no flow collection is open and reads on,
  // so what follows is still a node: read as the start of text, 1 MB of
  // brackets behind it was parsed, 13 s and 2 GB.
  const levels = 500_000
  const deep = `${'['.repeat(levels)}${']'.repeat(levels)}`
  for (const stray of [']', '}', '] }'])
    t.same(textBeyond(`x: 1\ny: ${stray}${deep}\n`), { bound: 'nesting', line: 2 }, stray)
  t.equal(scannedDepth('a: x]y\nb: [1]\n'), parsedDepth('a: x]y\nb: [1]\n'), 'inside text it is text')
})

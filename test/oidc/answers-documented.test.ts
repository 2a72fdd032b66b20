/**
 * The classification of every IdP answer lives twice: as data in
 * src/oidc/answers.ts and as the table in docs/troubleshooting.md that
 * operators read. This keeps them equal, cell by cell.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { CLASSIFICATION, IDP_OPERATIONS, verdictOn } from '../../src/oidc/answers.js'

const doc = readFileSync(new URL('../../docs/troubleshooting.md', import.meta.url), 'utf8')

/** The first `code` span of each cell of each row of the table that starts with `| IdP answer |`. */
function documentedTable(markdown: string): string[][] {
  const lines = markdown.split('\n')
  const start = lines.findIndex((l) => l.startsWith('| IdP answer |'))
  if (start === -1) return []
  const rows: string[][] = []
  for (const line of lines.slice(start)) {
    if (!line.startsWith('|')) break
    if (/^\|\s*---/.test(line)) continue
    rows.push(
      line
        .slice(1, -1)
        .split('|')
        .map((cell) => /`([^`]+)`/.exec(cell)?.[1] ?? ''),
    )
  }
  return rows
}

t.test('docs/troubleshooting.md has the classification table, equal to the code', async (t) => {
  const [header, ...rows] = documentedTable(doc)
  t.ok(header, 'the table is there')
  t.same(header!.slice(1), IDP_OPERATIONS, 'one column per operation, in order')
  t.same(
    rows.map((r) => r[0]),
    Object.keys(CLASSIFICATION),
    'one row per answer, in order',
  )
  for (const row of rows) {
    const answer = row[0] as keyof typeof CLASSIFICATION
    IDP_OPERATIONS.forEach((operation, i) => {
      t.equal(row[i + 1], verdictOn(operation, answer), `${answer} × ${operation}`)
    })
  }
})

t.test('the comparison can fail: a changed cell is noticed', async (t) => {
  const column = IDP_OPERATIONS.indexOf('refresh') + 2
  const changed = doc
    .split('\n')
    .map((line) => {
      if (!line.startsWith('| `invalid_request`:')) return line
      const cells = line.split('|')
      cells[column] = ' `unavailable` '
      return cells.join('|')
    })
    .join('\n')
  t.not(changed, doc, 'the mutation applied')
  const row = documentedTable(changed).find((r) => r[0] === 'invalid_request')!
  t.equal(row[column - 1], 'unavailable')
  t.not(row[column - 1], verdictOn('refresh', 'invalid_request'))
})

t.test('every verdict of the table is explained under it', async (t) => {
  const verdicts = new Set(Object.values(CLASSIFICATION).flatMap((row) => Object.values(row)))
  for (const verdict of verdicts) t.match(doc, `- \`${verdict}\`: `, verdict)
})

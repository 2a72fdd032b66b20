/**
 * The docs are for users, who cannot open our tracker: an internal issue
 * number, or the history of what "had not landed" yet, tells them nothing.
 * The rule, precisely: an issue number in a Markdown file must say whose
 * issue it is, as `owner/repo#N`, a link to the tracker, or a project name
 * right before it (`oauth2-proxy #926`). A bare `#N`, `issue N`, `issue #N`,
 * `PR #N`, and "had not landed" / "not yet landed" are ours, and refused.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = fileURLToPath(new URL('..', import.meta.url))

/** Words that, before a `#N`, say nothing of whose issue it is. */
const GENERIC = new Set([
  'issue',
  'issues',
  'pr',
  'prs',
  'pull',
  'request',
  'requests',
  'ticket',
  'tickets',
  'bug',
  'bugs',
  'see',
  'in',
  'and',
  'or',
  'of',
  'per',
  'from',
  'fixes',
  'fixed',
  'closes',
  'item',
  'phase',
  'step',
])

/** The internal references in a Markdown text, with their line numbers. */
export function internalReferences(text: string): string[] {
  const found: string[] = []
  text.split('\n').forEach((line, i) => {
    const at = (what: string) => found.push(`${i + 1}: ${what}`)
    for (const m of line.matchAll(/\b(?:issues?|PRs?|pull requests?|tickets?)\s+#?\d+/gi)) at(m[0])
    // `#N` starting a word: attached to something (`owner/repo#N`, `page.html#2`) it is not a bare number.
    for (const m of line.matchAll(/(?<=^|[\s([])#\d+\b/g)) {
      const before = /([\w.-]+)\s+$/.exec(line.slice(0, m.index))?.[1]
      if (before === undefined || GENERIC.has(before.toLowerCase())) at(m[0])
    }
    for (const m of line.matchAll(
      /\b(?:had|has|have)(?:n't| not)(?: yet)? landed\b|\bnot yet (?:landed|merged)\b/gi,
    ))
      at(m[0])
  })
  return found
}

function markdown(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (['node_modules', '.git', 'test-artifacts'].includes(entry.name)) return []
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return markdown(path)
    return entry.name.endsWith('.md') ? [path] : []
  })
}

t.test('no Markdown file cites an internal issue or its history', async (t) => {
  const files = markdown(root)
  const names = files.map((file) => relative(root, file))
  t.ok(names.includes('README.md') && names.some((n) => n.startsWith('docs/')), `${files.length} files`)
  for (const file of files) t.same(internalReferences(readFileSync(file, 'utf8')), [], relative(root, file))
})

t.test('the rule: ours refused, someone else’s allowed', async (t) => {
  const ours = [
    'attack surface (issue 12). Each rule',
    "(simulated: issue 14's per-resource tokens had not landed; the bytes count)",
    'Issue #7 explains it.',
    'fixed in #42',
    'see PR #3',
    '#12 made this faster',
    'until resource tokens have not yet landed',
  ]
  for (const line of ours) t.not(internalReferences(line).length, 0, line)
  t.same(internalReferences(ours[1]!).length, 2, 'the number and the history, both')
  const theirs = [
    'as oauth2-proxy #926 describes',
    'the bug express-openid-connect #408 describes',
    'panva/oidc-provider#1234',
    'https://github.com/oauth2-proxy/oauth2-proxy/issues/926',
    'RFC 9700 §4.14.2; OIDC Core §11',
    '[the anchor](docs/deployment.md#metrics) and `&#39;`',
    'the callback landed on another host name than publicUrl',
  ]
  for (const line of theirs) t.same(internalReferences(line), [], line)
})

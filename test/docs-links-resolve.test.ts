/**
 * A relative link in the README or docs/ is how a reader gets from a
 * summary to its rule: one to a file that moved, or to a heading that was
 * reworded, lands nowhere, and GitHub says nothing of it. Every such link
 * must name a file that exists and, with `#anchor`, a heading of it, as
 * GitHub makes anchors from headings.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = fileURLToPath(new URL('..', import.meta.url))

/** Fenced blocks and code spans hold examples, not links. */
function prose(text: string): string {
  return text
    .replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '')
    .replace(/`[^`\n]*`/g, (span) => span.replace(/[[\]()]/g, ' '))
}

/**
 * GitHub's anchor of a heading: its text lower-cased, without Markdown,
 * punctuation dropped but `-` and `_`, each space a `-`; a repeated one
 * gets `-1`, `-2`, … in order.
 */
export function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>()
  const found = new Set<string>()
  for (const m of markdown
    .replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '')
    .matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const text = (m[1] ?? '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/`/g, '')
    const slug = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-')
    const n = seen.get(slug) ?? 0
    seen.set(slug, n + 1)
    found.add(n === 0 ? slug : `${slug}-${n}`)
  }
  return found
}

/** The relative links of `file` that resolve to nothing, each as written. */
export function brokenLinks(file: string): string[] {
  const broken: string[] = []
  for (const m of prose(readFileSync(file, 'utf8')).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    const link = m[1] ?? ''
    if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue
    const [path = '', anchor] = link.split('#')
    const target = path === '' ? file : join(dirname(file), decodeURIComponent(path))
    if (!existsSync(target)) broken.push(`${link}: no such file`)
    else if (anchor !== undefined) {
      if (statSync(target).isDirectory() || !target.endsWith('.md'))
        broken.push(`${link}: an anchor in no Markdown file`)
      else if (!anchors(readFileSync(target, 'utf8')).has(anchor)) broken.push(`${link}: no such heading`)
    }
  }
  return broken
}

t.test('every relative link of the README and docs/ names a file, and a heading of it', async (t) => {
  const docs = readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => join(root, 'docs', name))
  const files = [join(root, 'README.md'), ...docs]
  t.ok(docs.length > 0, `${files.length} files`)
  for (const file of files) t.same(brokenLinks(file), [], relative(root, file))
})

t.test('the rule: anchors as GitHub makes them, and broken links found', async (t) => {
  t.same(
    [
      ...anchors(
        '# RFC 10017 §6.1, point by point\n## Behind a reverse proxy (`server.trustProxy`)\n## A\n## A\n',
      ),
    ],
    ['rfc-10017-61-point-by-point', 'behind-a-reverse-proxy-servertrustproxy', 'a', 'a-1'],
  )
  t.same([...anchors('```md\n# not a heading\n```\n# real\n')], ['real'], 'a heading in a fence is none')
  const dir = t.testdir({
    'a.md': [
      '[fine](b.md#ok) [gone](b.md#gone) [moved](missing.md) [here](#a) [out](https://example.com/x.md)',
      '`[example](nowhere.md)`',
      '```md',
      '[example](nowhere.md)',
      '```',
      '# A',
    ].join('\n'),
    'b.md': '# Ok\n',
  })
  t.same(brokenLinks(join(dir, 'a.md')), ['b.md#gone: no such heading', 'missing.md: no such file'])
})

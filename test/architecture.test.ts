import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, posix, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

/**
 * The folders under src/ are layers (config, oidc, session, tokens, guards,
 * proxy, http, server, cli, ...): each may use the ones below it, never one
 * that uses it back. A cycle between two folders means neither can be read,
 * tested or changed alone; so does one between two files, inside a folder
 * too. Type-only imports count: they couple the folders just the same. A
 * file at the top of src/ is a unit of its own.
 */
const src = join(dirname(fileURLToPath(import.meta.url)), '..', 'src')

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sources(path)
    return entry.name.endsWith('.ts') ? [path] : []
  })
}

/** The folder of a file under src/, or the file itself at the top. */
function unitOf(file: string): string {
  const parts = relative(src, file).split(/[\\/]/)
  return parts.length > 1 ? `${parts[0]}/` : parts[0]!.replace(/\.ts$/, '')
}

const IMPORT =
  /(?:^|\s)(?:import|export)\s[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g

/** A file's path under src/, with forward slashes. */
function nameOf(file: string): string {
  return posix.join(...relative(src, file).split(/[\\/]/))
}

type Graph = Map<string, Map<string, string[]>>

/**
 * Edges between the units `unit` maps files to: `from` → `to` → the files
 * that make the edge, for the failure message.
 */
function importGraph(unit: (file: string) => string): Graph {
  const graph: Graph = new Map()
  for (const file of sources(src)) {
    const from = unit(file)
    for (const match of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const specifier = (match[1] ?? match[2])!
      const target = join(dirname(file), specifier.replace(/\.js$/, '.ts'))
      const to = unit(target)
      if (to === from) continue
      const edges = graph.get(from) ?? new Map<string, string[]>()
      graph.set(from, edges)
      edges.set(to, [...(edges.get(to) ?? []), nameOf(file)])
    }
  }
  return graph
}

const unitGraph = () => importGraph(unitOf)
const fileGraph = () => importGraph(nameOf)

/** Groups of units that reach one another (Tarjan's strongly connected components), larger than one. */
function tangles(graph: Graph): string[][] {
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const found: string[][] = []
  const visit = (node: string) => {
    index.set(node, index.size)
    low.set(node, index.get(node)!)
    stack.push(node)
    for (const next of graph.get(node)?.keys() ?? []) {
      if (!index.has(next)) {
        visit(next)
        low.set(node, Math.min(low.get(node)!, low.get(next)!))
      } else if (stack.includes(next)) low.set(node, Math.min(low.get(node)!, index.get(next)!))
    }
    if (low.get(node) !== index.get(node)) return
    const group: string[] = []
    for (let top = stack.pop()!; ; top = stack.pop()!) {
      group.push(top)
      if (top === node) break
    }
    if (group.length > 1) found.push(group.sort())
  }
  for (const node of graph.keys()) if (!index.has(node)) visit(node)
  return found
}

/** Each tangle as the edges inside it, with the files that make them. */
function explain(graph: Graph): string[][] {
  return tangles(graph).map((group) =>
    group.flatMap((from) =>
      [...(graph.get(from) ?? [])]
        .filter(([to]) => group.includes(to))
        .map(([to, files]) => `${from} → ${to} (${[...new Set(files)].join(', ')})`),
    ),
  )
}

t.test('no import cycle between the folders of src/', async (t) => {
  const graph = unitGraph()
  t.ok(graph.get('tokens/')?.has('session/'), 'the walk sees imports between folders')
  t.same(explain(graph), [], 'units that import one another, with the imports that tie them')
})

t.test('no import cycle between the files of src/, inside a folder either', async (t) => {
  const graph = fileGraph()
  t.ok(graph.get('proxy/routes.ts')?.has('proxy/forward.ts'), 'the walk sees imports inside a folder')
  t.ok(graph.get('server/stores.ts')?.has('server/redis-stores.ts'), 'and dynamic imports')
  t.same(explain(graph), [], 'files that import one another, with the imports that tie them')
})

/**
 * The auth endpoints (http/) and the proxy (proxy/) are siblings: what both
 * need, such as the anti-forgery check or the deferred 100 Continue, lives
 * in guards/, so a request reads proxy → guards, never proxy → http → proxy.
 */
t.test('http/ and proxy/ never import each other', async (t) => {
  const graph = unitGraph()
  t.ok(graph.get('proxy/')?.has('guards/'), 'the walk sees the proxy use the shared guards')
  const between = (from: string, to: string) =>
    (graph.get(from)?.get(to) ?? []).map((file) => `${file} imports from ${to}`)
  t.same([...between('http/', 'proxy/'), ...between('proxy/', 'http/')], [], 'imports between the siblings')
})

// The README's source layout is where a reader looks for a concern: it
// once lacked four folders (crypto/, dpop/, tls/, tracing/) and four of the
// top-level files, so a new folder or file must join it to pass.
t.test("every folder and top-level file of src/ has a row in the README's source layout", async (t) => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const table = readme.slice(readme.indexOf('| Folder | Concern |'))
  const named = new Set(
    table
      .slice(0, table.indexOf('\n\n'))
      .split('\n')
      .flatMap((row) => [...(row.split(' | ')[0] ?? '').matchAll(/`src\/([^`]+)`/g)].map((m) => m[1]!)),
  )
  t.ok(named.size > 10, 'the table was found')
  const units = readdirSync(src, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() || entry.name.endsWith('.ts'))
    .map((entry) => (entry.isDirectory() ? `${entry.name}/` : entry.name))
  for (const unit of units) t.ok(named.has(unit), `src/${unit}`)
})

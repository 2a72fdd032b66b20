import {
  type Document,
  isAlias,
  isMap,
  isNode,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  type Pair,
  parseDocument,
  visit,
  type YAMLMap,
} from 'yaml'
import type { ConfigProblem } from './errors.js'
import { formatPath } from './option-path.js'
import { syntaxProblems } from './problems.js'
import { BEYOND, textBeyond } from './yaml-scan.js'

type Path = readonly (string | number)[]

/** Config text parsed as YAML, and what refuses it so far. */
export interface ParsedYaml {
  /** Absent when the text was refused before it was parsed. */
  readonly doc?: Document.Parsed
  readonly lineCounter: LineCounter
  /** Syntax errors, or the one reason the text was not parsed. */
  readonly problems: readonly ConfigProblem[]
}

/**
 * Parses config text as YAML once it is known to be within `MAX_NESTING`
 * and `MAX_NODES` (yaml-scan.ts): YAML's parser recurses on each level and
 * slows with each (500,000 levels held `gatehouse check` for minutes), and
 * takes about 1 KB and 5 µs a node.
 */
export function parseYaml(text: string): ParsedYaml {
  const lineCounter = new LineCounter()
  const beyond = textBeyond(text)
  if (beyond !== undefined)
    return { lineCounter, problems: [{ path: '', line: beyond.line, message: BEYOND[beyond.bound] }] }
  // Keys set twice are found by documentValues, which names their option;
  // YAML's own check compares each key with every other (1 s for 10,000).
  // Not YAML's pretty errors: each copies the text around the error into
  // its message, and a long line of errors (`x: ]]]…`) made that quadratic:
  // 200 KB of them took minutes. The line is all a problem names.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false })
  const errors = doc.errors.map(({ code, message, pos }) => ({
    code,
    message,
    linePos: [lineCounter.linePos(pos[0])] as const,
  }))
  return { doc, lineCounter, problems: syntaxProblems(errors, text) }
}

/**
 * Makes each plain decimal scalar that YAML read as a number, but that does
 * not print back as what was typed, keep its text: an 18-digit client id, a
 * secret of digits, `0123`. A number cannot hold those, and a string field
 * must see what the user wrote. Number fields still get their number: the
 * schema converts the text as it does for `${PORT}`. A key keeps its text
 * whatever its form: a key is a name (`0x1F:` is no key 31).
 */
export function keepNumberText(doc: Document): void {
  visit(doc, {
    Scalar(key, node) {
      if (
        typeof node.value === 'number' &&
        node.type === 'PLAIN' &&
        node.tag === undefined &&
        node.source !== undefined &&
        (key === 'key' || /^[-+]?\d+(\.\d+)?$/.test(node.source)) &&
        String(node.value) !== node.source
      ) {
        node.value = node.source
      }
    },
  })
}

/**
 * What keepNumberText leaves: a plain scalar YAML read as a number whose
 * text is not the number's (`12e3` is 12000, `0x1F` 31, `123e4567` and
 * `1e309` Infinity). Each is a problem where the option takes text, as
 * `tree` (the values as the schema converted them) shows, since the text
 * was lost; and where no number holds it. Elsewhere the number is meant.
 */
export function numberTextProblems(doc: Document, lineCounter: LineCounter, tree: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = []
  /** The node each anchor names at this point of the document (YAML 1.2 §7.1: the last before). */
  const anchors = new Map<string, Node>()
  // An alias is its anchor's value at the alias's own option, whose type
  // may differ: `port: &p 0x1F90` is 8080 there, and `clientId: *p` the
  // text "8080". Named at the alias. documentValues has refused an alias
  // inside what it names and bounded what aliases bring in, so this ends.
  const walk = (node: unknown, path: (string | number)[], alias?: Node) => {
    if (isAlias(node)) {
      const target = anchors.get(node.source)
      if (target !== undefined) walk(target, path, alias ?? node)
      return
    }
    if (alias === undefined && isNode(node) && node.anchor) anchors.set(node.anchor, node)
    if (isMap(node)) {
      for (const pair of node.items) {
        if (alias === undefined && isNode(pair.key) && pair.key.anchor) anchors.set(pair.key.anchor, pair.key)
        if (isScalar(pair.key)) walk(pair.value, [...path, String(pair.key.value)], alias)
      }
    } else if (isSeq(node)) {
      for (const [i, item] of node.items.entries()) walk(item, [...path, i], alias)
    } else if (
      isScalar(node) &&
      typeof node.value === 'number' &&
      node.type === 'PLAIN' &&
      node.tag === undefined &&
      node.source !== undefined &&
      String(node.value) !== node.source
    ) {
      const message = numberProblem(node.source, node.value, typeof valueAt(tree, path) === 'string')
      if (message !== undefined)
        problems.push({ path: formatPath(path), line: lineOf(alias ?? node, lineCounter), message })
    }
  }
  walk(doc.contents, [])
  return problems
}

function numberProblem(source: string, value: number, text: boolean): string | undefined {
  // Not the value itself: this may be a secret.
  if (text)
    return 'YAML reads this as a number, which loses the text as written (an exponent, 0x, 0o, .inf); quote the value'
  if (Number.isNaN(value)) return `${source} is not a number`
  if (!Number.isFinite(value))
    return /inf/i.test(source)
      ? `${source} is infinite; no option takes it`
      : `${source} is out of range: no number is that large`
  return undefined
}

function valueAt(tree: unknown, path: readonly (string | number)[]): unknown {
  let value = tree
  for (const part of path) {
    if (typeof value !== 'object' || value === null) return undefined
    value = (value as Record<string | number, unknown>)[part]
  }
  return value
}

function lineOf(node: Node, lineCounter: LineCounter): number | undefined {
  return node.range ? lineCounter.linePos(node.range[0]).line : undefined
}

/**
 * Maps an option path such as `['routes', 1, 'upstream']` to the 1-based line
 * that best shows it: the key of the option, else of the nearest enclosing
 * option that exists (a required option that is missing points at its parent).
 */
export function lineLocator(doc: Document, lineCounter: LineCounter): (path: Path) => number | undefined {
  const lineOf = (node: unknown): number | undefined => {
    const range = (node as { range?: readonly number[] } | null | undefined)?.range
    return range === undefined ? undefined : lineCounter.linePos(range[0]!).line
  }
  // Each mapping's pairs by key, the first of a name, made once: a problem
  // at each key of a mapping of 40,000 searched its keys once each, 19 s.
  const indexes = new WeakMap<YAMLMap, Map<string, Pair>>()
  const pairOf = (map: YAMLMap, key: string | number): Pair | undefined => {
    let index = indexes.get(map)
    if (index === undefined) {
      index = new Map()
      for (const pair of map.items) {
        const name = isScalar(pair.key) ? String(pair.key.value) : undefined
        if (name !== undefined && !index.has(name)) index.set(name, pair)
      }
      indexes.set(map, index)
    }
    return index.get(String(key))
  }
  const nodeAt = (path: Path): unknown => {
    let node: unknown = doc.contents
    for (const part of path) {
      if (isMap(node)) node = pairOf(node, part)?.value
      else if (isSeq(node) && typeof part === 'number') node = node.items[part]
      else return undefined
    }
    return node
  }
  return (path) => {
    for (let depth = path.length; depth > 0; depth--) {
      const parent = nodeAt(path.slice(0, depth - 1))
      const last = path[depth - 1]!
      let line: number | undefined
      if (isMap(parent)) {
        // The key, not the value: a block value starts on the line below it.
        const pair = pairOf(parent, last)
        line = lineOf(pair?.key) ?? lineOf(pair?.value)
      } else if (isSeq(parent) && typeof last === 'number') {
        line = lineOf(parent.items[last])
      }
      if (line !== undefined) return line
    }
    return lineOf(doc.contents)
  }
}

/**
 * `lineLocator` over config text read on its own, for problems found after
 * loading (a reload's restart-only settings); no line where the text does
 * not parse.
 */
export function linesOf(text: string): (path: Path) => number | undefined {
  const { doc, lineCounter, problems } = parseYaml(text)
  return doc === undefined || problems.length > 0 ? () => undefined : lineLocator(doc, lineCounter)
}

import { type Document, isMap, isScalar, isSeq, LineCounter, parseDocument, visit } from 'yaml'
import type { ConfigProblem } from './errors.js'
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
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: false })
  return { doc, lineCounter, problems: syntaxProblems(doc.errors, text) }
}

/**
 * Makes each plain decimal scalar that YAML read as a number, but that does
 * not print back as what was typed, keep its text: an 18-digit client id, a
 * secret of digits, `0123`. A number cannot hold those, and a string field
 * must see what the user wrote. Number fields still get their number: the
 * schema converts the text as it does for `${PORT}`.
 */
export function keepNumberText(doc: Document): void {
  visit(doc, {
    Scalar(_key, node) {
      if (
        typeof node.value === 'number' &&
        node.type === 'PLAIN' &&
        node.tag === undefined &&
        node.source !== undefined &&
        /^[-+]?\d+(\.\d+)?$/.test(node.source) &&
        String(node.value) !== node.source
      ) {
        node.value = node.source
      }
    },
  })
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
  return (path) => {
    for (let depth = path.length; depth > 0; depth--) {
      const parent = doc.getIn(path.slice(0, depth - 1), true)
      const last = path[depth - 1]
      let line: number | undefined
      if (isMap(parent)) {
        // The key, not the value: a block value starts on the line below it.
        const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(last))
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

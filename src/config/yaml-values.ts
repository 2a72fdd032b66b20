import { type Document, isAlias, isMap, isScalar, isSeq, type LineCounter, type Node } from 'yaml'
import type { ConfigProblem } from './errors.js'
import { formatPath, type Path } from './option-path.js'
import { BEYOND, MAX_NESTING, MAX_NODES } from './yaml-scan.js'

/**
 * YAML's own tags (YAML 1.2 §10.3, the core schema), which only say how a
 * value is read (`!!str 0123` keeps the text), each with what it must have
 * made of the value: YAML leaves a value it cannot read so as it is, and
 * warns. `!` is the non-specific tag, which makes a scalar a string.
 */
const CORE_TAGS: ReadonlyMap<string, (node: Node) => boolean> = new Map([
  ['!', (node: Node) => !isScalar(node) || typeof node.value === 'string'],
  ...Object.entries({
    str: (node: Node) => isScalar(node) && typeof node.value === 'string',
    int: (node: Node) => isScalar(node) && Number.isInteger(node.value),
    float: (node: Node) => isScalar(node) && typeof node.value === 'number',
    bool: (node: Node) => isScalar(node) && typeof node.value === 'boolean',
    null: (node: Node) => isScalar(node) && node.value === null,
    map: isMap,
    seq: isSeq,
  }).map(([name, fits]): [string, (node: Node) => boolean] => [`tag:yaml.org,2002:${name}`, fits]),
])

/** A parsed config document as plain values, and what it holds that a config may not. */
export interface DocumentValues {
  readonly value: unknown
  /** Each a reason to refuse the file. */
  readonly problems: readonly ConfigProblem[]
  /** False when the walk stopped at a bound: `value` is then not the document. */
  readonly complete: boolean
}

interface Walked {
  readonly value: unknown
  /** Nodes, with every alias inside counted as all it brings in. */
  readonly size: number
  /** Lists and mappings nested in it, itself included. */
  readonly height: number
}

const STOPPED: Walked = { value: undefined, size: 0, height: 0 }

/**
 * The values of `doc`, in one walk that counts them as it goes and stops
 * at a bound: more than `MAX_NESTING` levels of lists and mappings, or more
 * than `MAX_NODES` nodes, aliases expanded; an alias inside the node it
 * names. It also refuses what YAML allows but a config must not hold: a
 * key set twice in one mapping, a `<<` merge key, a tag other than YAML's
 * own, a key that is not a scalar. An alias is the value its anchor made,
 * the same object, as YAML's `toJS` gives; that resolves each alias by a
 * scan of the document's anchors, and with 25,000 aliases took 21 s.
 */
export function documentValues(doc: Document, lineCounter: LineCounter): DocumentValues {
  const problems: ConfigProblem[] = []
  const lineOf = (node: Node | null | undefined) =>
    node?.range === undefined || node.range === null ? undefined : lineCounter.linePos(node.range[0]).line
  /** The node each anchor name stands for at this point of the document (YAML 1.2 §7.1: the last before). */
  const anchors = new Map<string, Node>()
  const walkedAnchors = new Map<Node, Walked>()
  const inside = new Set<Node>()
  let nodes = 0
  let stopped = false

  const stop = (node: Node | null, path: Path, message: string): Walked => {
    problems.push({ path: formatPath(path), line: lineOf(node), message })
    stopped = true
    return STOPPED
  }
  /** Counts `size` more nodes; false, and stopped, past `MAX_NODES`. `alias` names what brought them in. */
  const count = (node: Node | null, path: Path, size: number, alias?: string): boolean => {
    nodes += size
    if (nodes <= MAX_NODES) return true
    stop(
      node,
      path,
      alias === undefined
        ? BEYOND.nodes
        : `the alias *${alias} brings in ${size.toLocaleString('en')} nodes: ${BEYOND.nodes}`,
    )
    return false
  }

  const walk = (node: Node | null, path: Path, depth: number): Walked => {
    if (stopped) return STOPPED
    // A key without a value (`? key`, `{ key }`).
    if (node === null) return count(null, path, 1) ? { value: null, size: 1, height: 0 } : STOPPED
    if (isAlias(node)) {
      const target = anchors.get(node.source)
      // An alias without its anchor is a syntax error YAML has reported.
      if (target === undefined) return { value: undefined, size: 0, height: 0 }
      if (inside.has(target))
        return stop(
          node,
          path,
          `the alias *${node.source} is inside the node it names, which would hold itself`,
        )
      const walked = walkedAnchors.get(target)!
      if (depth + walked.height > MAX_NESTING)
        return stop(
          node,
          path,
          `the alias *${node.source} brings in lists and mappings that ${BEYOND.nesting}`,
        )
      if (!count(node, path, walked.size, node.source)) return STOPPED
      return walked
    }
    if (node.tag !== undefined) {
      const fits = CORE_TAGS.get(node.tag)
      if (fits === undefined || !fits(node))
        problems.push({ path: formatPath(path), line: lineOf(node), message: tagProblem(node.tag, fits) })
    }
    if (node.anchor) {
      anchors.set(node.anchor, node)
      inside.add(node)
    }
    const walked = walkNode(node, path, depth)
    if (node.anchor) {
      inside.delete(node)
      walkedAnchors.set(node, walked)
    }
    return walked
  }

  const walkNode = (node: Node, path: Path, depth: number): Walked => {
    if (isScalar(node)) return count(node, path, 1) ? { value: node.value, size: 1, height: 0 } : STOPPED
    if (!isMap(node) && !isSeq(node)) return { value: undefined, size: 0, height: 0 }
    if (depth + 1 > MAX_NESTING) return stop(node, path, BEYOND.nesting)
    if (!count(node, path, 1)) return STOPPED
    let size = 1
    let height = 0
    const add = (walked: Walked) => {
      size += walked.size
      height = Math.max(height, walked.height)
      return walked.value
    }
    if (isSeq(node)) {
      const value = node.items.map((item, i) => add(walk(item as Node | null, [...path, i], depth + 1)))
      return stopped ? STOPPED : { value, size, height: height + 1 }
    }
    const value: Record<string, unknown> = {}
    const lines = new Map<string, number | undefined>()
    for (const pair of node.items) {
      const key = pair.key as Node | null
      const keyed = add(walk(key, path, depth + 1))
      if (stopped) return STOPPED
      if (key !== null && !isScalar(key)) {
        problems.push({
          path: formatPath(path),
          line: lineOf(key),
          message: 'a key must be a name, not a list, a mapping or an alias',
        })
        continue
      }
      if (key?.value === '<<' && key.type === 'PLAIN') {
        problems.push({
          path: formatPath(path),
          line: lineOf(key),
          message:
            '<< merge keys are not supported (YAML 1.2 has none): write the options out, or make the whole value an alias (*name)',
        })
        continue
      }
      const name = keyed === null || keyed === undefined ? '' : String(keyed)
      if (lines.has(name)) {
        const first = lines.get(name)
        problems.push({
          path: formatPath([...path, name]),
          line: lineOf(key),
          message: `is set twice in one mapping${first === undefined ? '' : ` (first on line ${first})`}; YAML would keep only the last`,
        })
      }
      lines.set(name, lineOf(key))
      // No option is named so, and every later copy of the tree
      // (`out[key] = …`) would make it the copy's prototype, not a key:
      // its options then read as set, and no unknown-option check sees it.
      if (name === '__proto__') {
        problems.push({ path: formatPath(path), line: lineOf(key), message: '__proto__ is not an option' })
        continue
      }
      value[name] = add(walk(pair.value as Node | null, [...path, name], depth + 1))
    }
    return stopped ? STOPPED : { value, size, height: height + 1 }
  }

  const { value } = walk(doc.contents as Node | null, [], 0)
  return { value, problems, complete: !stopped }
}

function tagProblem(tag: string, known: unknown): string {
  // As it is written: `!!binary` for YAML's, `!vault` for a local one.
  const shown = tag.startsWith('tag:yaml.org,2002:') ? `!!${tag.slice('tag:yaml.org,2002:'.length)}` : tag
  return known
    ? `the tag ${shown} does not fit the value written after it`
    : `the tag ${shown} is not supported: Gatehouse reads no tags but YAML's own (such as !!str, to keep a value as text); remove it`
}

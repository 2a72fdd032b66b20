/**
 * How deeply lists and mappings may nest in a config file. A config needs
 * about 6 levels (`frontends[0].routes[1].exchange.…`), and the variables
 * are filled in to 32 (env.ts). YAML's parser recurses once a level and
 * slows with every one: 500,000 levels of `[[[…]]]` (1 MB) held
 * `gatehouse check` for minutes.
 */
export const MAX_NESTING = 32

/**
 * The most nodes (keys, values, lists and mappings) a config file may hold,
 * each alias counted as all it brings in (yaml-values.ts). A config has a
 * few thousand at most; a 1 MiB file can hold 500,000, whose parse alone
 * takes 450 MB and seconds, and aliases multiply that: 99 aliases of a
 * 340,000-item list made 34 million objects and ran the gateway out of
 * memory, though YAML's own alias limit (100) let them by.
 */
export const MAX_NODES = 100_000

/** `[`, `]`, `{`, `}` and `,`: they end an anchor's or a tag's name. */
const FLOW_INDICATORS: ReadonlySet<number> = new Set([0x5b, 0x5d, 0x7b, 0x7d, 0x2c])

const SPACE = 0x20
const TAB = 0x09
const CR = 0x0d
const LF = 0x0a

/** What a problem says of each bound, at the line where the file passes it. */
export const BEYOND: Readonly<Record<Beyond['bound'], string>> = {
  nesting: `nests lists and mappings more than ${MAX_NESTING} levels deep here; a config needs about 6`,
  nodes: `the file holds more than ${MAX_NODES.toLocaleString('en')} nodes by here (keys, values, lists and mappings, an alias counted as all it brings in); a config needs a few thousand`,
}

/** Which bound the text passes, and the line where it does. */
export interface Beyond {
  readonly bound: 'nesting' | 'nodes'
  readonly line: number
}

/**
 * Where `text` nests lists and mappings deeper than `limits.nesting`, or
 * holds more than `limits.nodes` nodes, or `undefined`: one pass over the
 * text, before YAML's parser sees it. It reads YAML's structure the way a
 * person reads indentation, not as the parser does: block levels by their
 * columns, flow levels by their brackets, skipping quoted text, comments
 * and block scalars. On text that is not plain YAML it may count a level
 * or a node too few (a list written at its key's column, an empty value);
 * the parsed document is counted again, exactly (yaml-values.ts), and its
 * parse is bounded by what this lets through.
 */
export function textBeyond(
  text: string,
  limits: { readonly nesting: number; readonly nodes: number } = { nesting: MAX_NESTING, nodes: MAX_NODES },
): Beyond | undefined {
  /** The columns of the block collections open on the lines so far. */
  const columns: number[] = []
  let flow = 0
  let nodes = 0
  let line = 1
  /** The quote a scalar opened, still open at the end of a line. */
  let quote = 0
  /**
   * While a block scalar's lines run, the column its content must be
   * deeper than (YAML 1.2 §8.1.1.1): its mapping's keys, or its list's
   * dashes, not the indentation of the line that opened it (`- a: |`).
   */
  let blockScalar: number | undefined

  let i = 0
  while (i < text.length) {
    const end = lineEnd(text, i)
    let indent = 0
    while (i + indent < end && text.charCodeAt(i + indent) === SPACE) indent++
    const blank = i + indent === end || text.charCodeAt(i + indent) === CR
    // YAML 1.2 §9.1.4: `---` or `...` at a line's start ends the document,
    // inside a quoted scalar, a flow collection or a block scalar too: what
    // was open is closed, and the line is read on after the marker.
    const marker = documentMarker(text, i, end)
    if (marker) {
      columns.length = 0
      flow = 0
      quote = 0
      blockScalar = undefined
    }
    if (blockScalar !== undefined && (blank || indent > blockScalar)) {
      i = end + 1
      line++
      continue
    }
    blockScalar = undefined
    if (quote === 0 && flow === 0) {
      if (blank || text.charCodeAt(i + indent) === 0x23 /* # */) {
        i = end + 1
        line++
        continue
      }
      while (columns.length > 0 && columns[columns.length - 1]! >= indent) columns.pop()
    }

    /** Where the scalar being read began: a key's column, if `:` follows. */
    let scalarAt = -1
    let nodeStart = quote === 0
    for (let at = i + (marker ? 3 : quote === 0 ? indent : 0); at < end; at++) {
      const c = text.charCodeAt(at)
      if (quote !== 0) {
        if (quote === 0x22 /* " */ && c === 0x5c /* \ */) at++
        else if (c === quote) {
          if (quote === 0x27 /* ' */ && text.charCodeAt(at + 1) === 0x27) at++
          else quote = 0
        }
        continue
      }
      if (c === SPACE || c === TAB || c === CR) continue
      const before = at === i ? SPACE : text.charCodeAt(at - 1)
      if (c === 0x23 /* # */ && (before === SPACE || before === TAB)) break
      if (flow > 0 && (c === 0x5b || c === 0x7b) /* [ { */) {
        flow++
        nodes++
        nodeStart = true
      } else if (flow > 0 && (c === 0x5d || c === 0x7d) /* ] } */) {
        flow--
        nodeStart = false
      } else if (flow > 0 && c === 0x2c /* , */) {
        nodeStart = true
      } else if (
        c === 0x3a /* : */ &&
        (separates(text, at + 1, end) || (flow > 0 && flowIndicator(text, at + 1)))
      ) {
        if (flow === 0 && scalarAt >= 0) columns.push(scalarAt - i)
        scalarAt = -1
        nodeStart = true
      } else if (!nodeStart) {
        continue
      } else if (c === 0x5d || c === 0x7d /* ] } */) {
        // No flow collection is open: YAML refuses it and reads on, so what
        // follows is still a node, not text to skip.
      } else if (c === 0x22 || c === 0x27 /* " ' */) {
        quote = c
        scalarAt = at
        nodeStart = false
        nodes++
      } else if (c === 0x5b || c === 0x7b /* [ { */) {
        flow++
        nodes++
      } else if (flow === 0 && (c === 0x2d || c === 0x3f) /* - ? */ && separates(text, at + 1, end)) {
        // An entry of a block list, or a key; not a node of its own.
        columns.push(at - i)
      } else if (flow === 0 && (c === 0x7c || c === 0x3e) /* | > */) {
        // The innermost open collection's column; the line's own where none
        // is open on it (`: |` after an explicit `? key`).
        blockScalar = Math.max(indent, columns.length > 0 ? columns[columns.length - 1]! : -1)
        break
      } else if (c === 0x26 || c === 0x21 /* & ! */) {
        // An anchor or a tag comes before the node it names. Its name ends
        // at a space or a flow indicator (YAML 1.2 §6.9: ns-anchor-char and
        // ns-tag-char exclude `[]{},`), so `&a[` opens a list: read to the
        // space, `[&a[[[…]]]]` hid every level. A verbatim tag (`!<…>`)
        // holds a URI, which may have them, and ends at its `>`.
        if (c === 0x21 && text.charCodeAt(at + 1) === 0x3c /* < */) {
          // Within the line: a search of the text past it, at each `!<`, was quadratic.
          while (at + 1 < end && text.charCodeAt(at) !== 0x3e /* > */) at++
        } else {
          while (
            at + 1 < end &&
            !separates(text, at + 1, end) &&
            !FLOW_INDICATORS.has(text.charCodeAt(at + 1))
          )
            at++
        }
      } else {
        scalarAt = at
        nodeStart = false
        nodes++
      }
      if (columns.length + flow > limits.nesting) return { bound: 'nesting', line }
      if (nodes > limits.nodes) return { bound: 'nodes', line }
    }
    i = end + 1
    line++
  }
  return undefined
}

/** `---` or `...` starting at `from`, the start of a line, and followed by a space or the line's end. */
function documentMarker(text: string, from: number, end: number): boolean {
  return (text.startsWith('---', from) || text.startsWith('...', from)) && separates(text, from + 3, end)
}

function lineEnd(text: string, from: number): number {
  const end = text.indexOf('\n', from)
  return end === -1 ? text.length : end
}

/** Whitespace or the end of the line follows: `-`, `?` and `:` are indicators only then. */
function separates(text: string, at: number, end: number): boolean {
  if (at >= end) return true
  const c = text.charCodeAt(at)
  return c === SPACE || c === TAB || c === CR || c === LF
}

/** In a flow collection, `:` is an indicator before these too (`{a:[b]}`, JSON's `{"a":1}`). */
function flowIndicator(text: string, at: number): boolean {
  const c = text.charCodeAt(at)
  return c === 0x2c || c === 0x5b || c === 0x5d || c === 0x7b || c === 0x7d || c === 0x22 || c === 0x27
}

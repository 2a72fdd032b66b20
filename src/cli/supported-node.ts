/**
 * The Node versions Gatehouse runs on are package.json's `engines.node`.
 * npm only warns about them (EBADENGINE, easy to miss), and on an older
 * Node much of Gatehouse loads and then fails somewhere deep, so the CLI
 * and the demo check first, before they import anything else. This module
 * imports nothing of ours and nothing a supported Node lacks.
 */
import { readFileSync } from 'node:fs'

/** One `||` alternative of the range: `^22.11.0` (that major only) or `>=24.11.0` (and every later one). */
interface Alternative {
  readonly from: readonly [number, number, number]
  readonly sameMajor: boolean
}

const VERSION = /^v?(\d+)\.(\d+)\.(\d+)/
const ALTERNATIVE = /^(\^|>=)\s*(\d+)\.(\d+)\.(\d+)$/

function triple(version: string): [number, number, number] | undefined {
  const match = VERSION.exec(version.trim())
  return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : undefined
}

/**
 * Parses the range forms our package.json uses: `^X.Y.Z` (X >= 1) and
 * `>=X.Y.Z`, joined by `||`. Anything else throws, so a new form is
 * noticed by the test that parses package.json, not misread at start-up.
 */
export function parseEngines(range: string): Alternative[] {
  return range.split('||').map((part) => {
    const match = ALTERNATIVE.exec(part.trim())
    if (!match || (match[1] === '^' && match[2] === '0'))
      throw new Error(`unsupported engines range "${part.trim()}": use ^X.Y.Z or >=X.Y.Z, joined by ||`)
    return { from: [Number(match[2]), Number(match[3]), Number(match[4])], sameMajor: match[1] === '^' }
  })
}

function atLeast(version: readonly number[], from: readonly number[]): boolean {
  for (let i = 0; i < 3; i++) if (version[i] !== from[i]) return version[i]! > from[i]!
  return true
}

/** Whether `version` (e.g. `22.12.0` or `v24.11.1`) satisfies `range`. */
export function satisfies(version: string, range: string): boolean {
  const v = triple(version)
  if (!v) return false
  return parseEngines(range).some(
    ({ from, sameMajor }) => atLeast(v, from) && (!sameMajor || v[0] === from[0]),
  )
}

/** The supported lines in words: "Node 22 from 22.11.0, or Node 24.11.0 and later". */
export function describeEngines(range: string): string {
  return parseEngines(range)
    .map(({ from, sameMajor }) =>
      sameMajor ? `Node ${from[0]} from ${from.join('.')}` : `Node ${from.join('.')} and later`,
    )
    .join(', or ')
}

/** package.json's `engines.node`; the file sits two levels up from both src/cli and dist/cli. */
export function enginesRange(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    engines: { node: string }
  }
  return pkg.engines.node
}

/**
 * One line refusing this Node, or undefined when it is supported. Both
 * arguments are injectable so tests need no old Node binary.
 */
export function nodeRefusal(
  version: string = process.versions.node,
  range: string = enginesRange(),
): string | undefined {
  if (satisfies(version, range)) return undefined
  return `gatehouse: Node ${version} is not supported; use ${describeEngines(range)} (package.json engines: ${range})`
}

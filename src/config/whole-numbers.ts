import type { ConfigProblem } from './errors.js'
import { formatPath, type Path } from './option-path.js'

/** Text that reads as a number with a fraction or an exponent: what `${VAR}` may bring to a whole-number option. */
const FRACTIONAL_TEXT = /^\s*[-+]?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][-+]?\d+)\s*$/

/**
 * The options where the schema wants a whole number and the file (or a
 * variable) gave one with a fraction: TypeBox's `Value.Convert` truncates
 * `2.5`, and the text `"2.5"`, to `2` without a word, so `maxPerUser: 2.5`
 * ran as 2; it reads the text `"1e1"` only up to its `e`, as 1. Found by walking what was written beside what conversion made
 * of it: a fractional value the conversion turned into another number.
 * Only options the schema makes numbers get here, so quoting the value
 * quotes no secret.
 */
export function truncatedNumbers(
  written: unknown,
  converted: unknown,
  lineOf: (path: Path) => number | undefined,
  path: (string | number)[] = [],
): ConfigProblem[] {
  if (Array.isArray(written)) {
    if (!Array.isArray(converted)) return []
    return written.flatMap((item, i) => truncatedNumbers(item, converted[i], lineOf, [...path, i]))
  }
  if (written !== null && typeof written === 'object') {
    if (converted === null || typeof converted !== 'object' || Array.isArray(converted)) return []
    return Object.entries(written).flatMap(([key, value]) =>
      truncatedNumbers(value, (converted as Record<string, unknown>)[key], lineOf, [...path, key]),
    )
  }
  const fractional =
    (typeof written === 'number' && Number.isFinite(written) && !Number.isInteger(written)) ||
    (typeof written === 'string' && FRACTIONAL_TEXT.test(written))
  if (!fractional || typeof converted !== 'number' || converted === Number(written)) return []
  const message = `must be a whole number in digits: ${String(written).trim()} would run as ${converted}`
  return [{ path: formatPath(path), line: lineOf(path), message }]
}

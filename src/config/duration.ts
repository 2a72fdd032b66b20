const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** The pattern the schema accepts for a duration written as text. */
export const DURATION_PATTERN = '^\\s*\\d+(\\.\\d+)?\\s*(ms|s|m|h|d)\\s*$'

/** `500ms`, `30s`, `5m`, `12h`, `1d`, or a plain number of seconds, to milliseconds. */
export function parseDuration(value: number | string): number {
  if (typeof value === 'number') return Math.round(value * 1000)
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(value)
  if (!match) throw new TypeError(`not a duration: ${value}`)
  return Math.round(Number(match[1]) * UNITS[match[2]!]!)
}

const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }

export const SIZE_PATTERN = '^\\s*\\d+\\s*(b|kb|mb|gb)\\s*$'

/** `512kb`, `1mb`, or a plain number of bytes. */
export function parseSize(value: number | string): number {
  if (typeof value === 'number') return Math.floor(value)
  const match = /^\s*(\d+)\s*(b|kb|mb|gb)\s*$/i.exec(value)
  if (!match) throw new TypeError(`not a size: ${value}`)
  return Number(match[1]) * SIZE_UNITS[match[2]!.toLowerCase()]!
}

import fc from 'fast-check'

/**
 * Strings of any code points, lone surrogates included: what
 * `fc.string({ unit: 'binary' })` generates. fast-check builds a reverse
 * map of all 1,114,112 code points when that arbitrary is created (about
 * 3 s of CPU, more than the rest of a property file), to shrink values it
 * did not generate; a mapped unit shrinks through its own context instead.
 */
export function anyCodePoints(maxLength: number): fc.Arbitrary<string> {
  return fc.string({ unit: fc.nat({ max: 0x10ffff }).map((point) => String.fromCodePoint(point)), maxLength })
}

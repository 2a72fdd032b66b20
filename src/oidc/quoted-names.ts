/**
 * A list an identity provider advertises (its algorithms, its methods),
 * quoted where an operator or anyone reading `/readyz` sees it: the
 * provider fills it, up to the 1 MiB its answer may be.
 */

/** A name as JWA and the OAuth registries write them; anything else the IdP sent is not repeated. */
const NAME = /^[A-Za-z0-9+._-]{1,32}$/

/** How many names are quoted; the rest are counted. */
const QUOTED = 10

/** `list`'s first names, joined, and how many more it has. */
export function quotedNames(list: readonly unknown[]): string {
  const names = list.filter((name): name is string => typeof name === 'string' && NAME.test(name))
  const quoted = names.slice(0, QUOTED)
  const more = list.length - quoted.length
  if (more === 0) return quoted.join(', ')
  if (quoted.length === 0) return `${more} entries that are no algorithm or method names`
  return `${quoted.join(', ')}, and ${more} more`
}

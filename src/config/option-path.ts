/** Where an option is in the config tree: keys and list indexes, from the root. */
export type Path = (string | number)[]

/** `routes[2].tls.cert`: a path as the messages and the docs write it. */
export function formatPath(path: readonly (string | number)[]): string {
  let out = ''
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`
  return out
}

/** One part of a JSON pointer (RFC 6901 §4), a list index as a number. */
export function unescapePointer(part: string): string | number {
  const text = part.replace(/~1/g, '/').replace(/~0/g, '~')
  return /^\d+$/.test(text) ? Number(text) : text
}

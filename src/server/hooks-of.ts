/** A route's hooks of one kind as a list: Fastify takes one function, an array of them, or none. */
export function hooksOf<H>(hooks: H | readonly H[] | undefined): H[] {
  if (hooks === undefined) return []
  return Array.isArray(hooks) ? [...hooks] : [hooks as H]
}

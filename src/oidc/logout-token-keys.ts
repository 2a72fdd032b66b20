/**
 * How much of an issuer's JWKS the logout token verifier reads
 * (logout-token.ts): its first MAX_JWKS_KEYS keys, and which of its errors
 * are of a JWKS that could not be read.
 */

/**
 * The most keys of the issuer's JWKS that are read, in its order; the
 * rest are left out. jose looks at every key for each token, and imports
 * each that matches its `kid` and `alg` in turn, skipping any it cannot
 * import, again at each token: a JWKS of 37,000 keys that matched and
 * were no keys cost some 2 s of CPU per forged token, however few keys
 * were tried (logout-token.ts MAX_MATCHING_KEYS counts those imported). IdPs publish a
 * handful, a few more across rotations and algorithms.
 */
export const MAX_JWKS_KEYS = 100

export type KeysFetch = (url: string, init: RequestInit) => Promise<Response>

/**
 * The errors of a JWKS that could not be read (`firstKeysOf`): jose lets
 * them through as they came, as it does an error of a key it could not
 * import, and the two are told apart by this alone (`uncheckable`).
 */
const unfetched = new WeakSet<object>()

/**
 * Whether `err`, which jose let through as it came, is that of a key of a
 * JWKS read that could not be imported, not of a JWKS that could not be.
 */
export function keyNotImported(err: unknown): boolean {
  return typeof err === 'object' && err !== null && !unfetched.has(err)
}

/**
 * `fetch` with a JWKS answer of more than MAX_JWKS_KEYS keys cut to its
 * first MAX_JWKS_KEYS; `held` hears how many it held, or `undefined`
 * when it was within the bound. Any other answer passes as it came, for
 * jose to judge.
 */
export function firstKeysOf(fetch: KeysFetch, held: (count: number | undefined) => void): KeysFetch {
  return async (url, init) => {
    let response: Response
    let text: string
    try {
      response = await fetch(url, init)
      if (response.status !== 200) return response
      text = await response.text()
    } catch (err) {
      if (typeof err === 'object' && err !== null) unfetched.add(err)
      throw err
    }
    // Read, so no longer the wire's length or encoding.
    const headers = new Headers(response.headers)
    headers.delete('content-length')
    headers.delete('content-encoding')
    // Not its reason phrase, which may hold what the Response constructor refuses (idp-http.ts).
    const answer = (body: string) => new Response(body, { status: response.status, headers })
    let set: unknown
    try {
      set = JSON.parse(text)
    } catch {
      return answer(text)
    }
    if (!isObject(set) || !Array.isArray(set.keys) || set.keys.length <= MAX_JWKS_KEYS) {
      held(undefined)
      return answer(text)
    }
    held(set.keys.length)
    return answer(JSON.stringify({ ...set, keys: set.keys.slice(0, MAX_JWKS_KEYS) }))
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

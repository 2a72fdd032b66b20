/**
 * RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`. The IdP
 * is sent the scopes joined by spaces, and the gateway's token cache keys
 * join them so too and mark a DPoP-bound token with a quoted word
 * (tokens/audience.ts): a scope holding a space would be asked for as two,
 * and one holding `"` could be read as that mark, giving a bearer route
 * and a DPoP route one token.
 */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/

/** Each scope of `scopes` that RFC 6749 would not take, reported at its own index under `at`. */
export function checkScopes(
  scopes: readonly string[],
  at: readonly (string | number)[],
  add: (path: (string | number)[], message: string) => void,
): void {
  scopes.forEach((scope, i) => {
    if (!SCOPE_TOKEN.test(scope))
      add(
        [...at, i],
        `${JSON.stringify(scope)} is not a scope: RFC 6749 §3.3 allows printable ASCII only, without spaces, " or \\ (list two scopes as two items)`,
      )
  })
}

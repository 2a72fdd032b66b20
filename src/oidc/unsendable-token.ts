/**
 * An access token goes to upstreams in the `Authorization` header, so it
 * must be one a header can carry as the IdP wrote it. RFC 6749 §A.12
 * makes it `1*VSCHAR` (%x20-7E). An IdP's answer holding a CR, LF or NUL
 * was kept all the same: undici refuses such a header value before it
 * dials, so every request of the route answered `502 upstream_unreachable`
 * and logged the upstream as failing, for the token's whole lifetime
 * (a client-credentials token's up to a year, and in the shared cache for
 * every instance). A character past `~` fared no better: one past U+00FF
 * made the same 502, one in U+0080-00FF went out as a single byte, not
 * the UTF-8 the IdP signed, so no upstream could have taken it. A space
 * is a VSCHAR, but not at either end: a header field's value has no
 * whitespace there (RFC 9110 §5.5), so a trailing one is dropped by the
 * upstream's parser, and a leading one joins the scheme's separator.
 */

/** RFC 6749 §A.12's VSCHAR, one or more, a space at neither end (RFC 9110 §5.5). */
const VSCHARS = /^(?:[\x21-\x7e]|[\x21-\x7e][\x20-\x7e]*[\x21-\x7e])$/

/**
 * An access token the IdP issued that no header carries as issued: which
 * character, never the token. Thrown where the answer is read, and made a
 * gateway error by `translateIdpError` (an `invalid_answer`), so nothing of
 * the answer is kept.
 * `codePoint`: the character that is no VSCHAR, or `'edge'` for a space
 * at either end.
 */
export class UnsendableAccessToken extends Error {
  constructor(codePoint: number | 'edge') {
    super(
      codePoint === 'edge'
        ? 'the access token begins or ends with a space, which a header field drops there (RFC 9110 §5.5): no Authorization header would carry it to an upstream as issued'
        : `the access token holds U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}, which is no VSCHAR (RFC 6749 §A.12): no Authorization header would carry it to an upstream as issued`,
    )
    this.name = 'UnsendableAccessToken'
  }
}

/**
 * Throws `UnsendableAccessToken` when `answer`'s `access_token` has a
 * character outside VSCHAR, or a space at either end. One the answer
 * lacks, or holds as no string or an empty one, is oauth4webapi's to refuse.
 */
export function refuseUnsendable(answer: { readonly access_token?: unknown }): void {
  const token = answer.access_token
  if (typeof token !== 'string' || token === '' || VSCHARS.test(token)) return
  for (const char of token) {
    const codePoint = char.codePointAt(0)!
    if (codePoint < 0x20 || codePoint > 0x7e) throw new UnsendableAccessToken(codePoint)
  }
  throw new UnsendableAccessToken('edge')
}

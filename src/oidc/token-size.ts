/**
 * The bound on each token Gatehouse keeps (`tokens.maxSize`). Only the
 * 1 MiB of the whole IdP answer bounded them (idp-http.ts): a 1 MB token
 * was stored in the session record or the client-token cache, and sent in
 * every upstream request's Authorization header for its whole lifetime,
 * which no common upstream takes (Node.js reads 16 KiB of head by default,
 * nginx 8 KiB per header line, Envoy 60 KiB). A token over the bound makes
 * the answer an invalid one (translate.ts: `invalid_answer`), so nothing of
 * it is kept.
 */

/** The tokens of a token answer, by their field name in it (RFC 6749 §5.1, OIDC Core §3.1.3.3). */
export type TokenKind = 'access_token' | 'refresh_token' | 'id_token'

const WORDS: Readonly<Record<TokenKind, string>> = {
  access_token: 'access token',
  refresh_token: 'refresh token',
  id_token: 'ID token',
}

/**
 * A token the IdP issued over `tokens.maxSize`: what it was and how large,
 * never any of it. Thrown where the answer is read, while its rotated
 * refresh token can still be found (rotated.ts), and made a gateway error
 * by `translateIdpError`.
 */
export class TokenTooLarge extends Error {
  readonly kind: TokenKind
  readonly bytes: number
  readonly limit: number

  constructor(kind: TokenKind, bytes: number, limit: number) {
    super(`the ${WORDS[kind]} takes ${bytes} bytes, over the ${limit} of tokens.maxSize`)
    this.name = 'TokenTooLarge'
    this.kind = kind
    this.bytes = bytes
    this.limit = limit
  }
}

/**
 * Throws `TokenTooLarge` for the first of `kinds` in `answer` that is over
 * `limit` bytes: the tokens of it the caller would keep. A kind the
 * answer lacks, or holds as no string, is not this check's to refuse.
 */
export function refuseOversized(
  answer: Readonly<Partial<Record<TokenKind, unknown>>>,
  kinds: readonly TokenKind[],
  limit: number,
): void {
  for (const kind of kinds) {
    const token = answer[kind]
    if (typeof token !== 'string') continue
    // Bytes as sent on: a token is ASCII (RFC 6749 §A.12), but an IdP's stray
    // non-ASCII takes more than one each.
    const bytes = Buffer.byteLength(token)
    if (bytes > limit) throw new TokenTooLarge(kind, bytes, limit)
  }
}

/** The kinds a sign-in or refresh keeps: all three. */
export const SESSION_TOKENS: readonly TokenKind[] = ['access_token', 'refresh_token', 'id_token']

/** What an exchange or a client-credentials fetch keeps: its access token; nothing else of the answer is read. */
export const ACCESS_TOKEN_ONLY: readonly TokenKind[] = ['access_token']

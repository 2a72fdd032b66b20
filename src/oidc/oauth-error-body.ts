/**
 * What counts as an OAuth error body (RFC 6749 §5.2): a JSON object with a
 * non-empty `error` string, as oauth4webapi reads a 4xx's. One definition
 * for the two places an IdP puts one where oauth4webapi does not look: a
 * 4xx labelled other than `application/json` (idp-http.ts) and a 2xx that
 * carries one instead of its answer (translate.ts).
 */

export interface OAuthErrorBody {
  readonly error: string
  readonly error_description?: unknown
}

/** `value`'s OAuth error, if it is an OAuth error body. */
export function oauthErrorOf(value: unknown): OAuthErrorBody | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  const { error, error_description } = value as Record<string, unknown>
  return typeof error === 'string' && error !== '' ? { error, error_description } : undefined
}

/** Whether `text` is an OAuth error body in JSON. */
export function isOAuthErrorJson(text: string): boolean {
  try {
    return oauthErrorOf(JSON.parse(text)) !== undefined
  } catch {
    return false
  }
}

import type { GatehouseError } from '../errors.js'

/**
 * The refresh token an IdP issued in an answer Gatehouse then refused
 * (a 200 whose access token, ID token or lifetime failed validation), by the
 * error that refused it. Kept beside the error, never on it, so no log of
 * the error or its causes can print it.
 */
const rotated = new WeakMap<GatehouseError, string>()

/**
 * RFC 9700 §4.14.2: an IdP that answered 200 has rotated the refresh
 * token, whatever Gatehouse makes of the rest of the answer; the old one is
 * spent, and redeeming it again is a replay that revokes the grant. So the
 * new one is read from the answer as it came, for the session to keep.
 */
export async function rotatedIn(answer: Response | undefined): Promise<string | undefined> {
  if (answer === undefined) return undefined
  try {
    const body = (await answer.json()) as { refresh_token?: unknown }
    return typeof body.refresh_token === 'string' && body.refresh_token !== ''
      ? body.refresh_token
      : undefined
  } catch {
    return undefined
  }
}

/** `error`, remembered with the refresh token its refused answer carried. */
export function withRotated(error: GatehouseError, refreshToken: string | undefined): GatehouseError {
  if (refreshToken !== undefined) rotated.set(error, refreshToken)
  return error
}

/** The refresh token the answer behind `error` carried, if it was a 200 that rotated one. */
export function rotatedRefreshToken(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? rotated.get(error as GatehouseError) : undefined
}

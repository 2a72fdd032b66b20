/**
 * What oauth4webapi's refusal of a token answer's `token_type` means, naming
 * the type. It says only "unsupported `token_type` value", and the type it
 * refused (RFC 6749 §7.1: neither `Bearer` nor `DPoP`; RFC 8693 §2.2.1's
 * `N_A` at a refresh, an old draft's `mac`) was in nothing the operator
 * could read.
 */
import * as oauth from 'oauth4webapi'

/** oauth4webapi's message for the refusal (its processGenericAccessTokenResponse). */
const UNSUPPORTED_TOKEN_TYPE = 'unsupported `token_type` value'

/**
 * A type name as RFC 6749 §8.1 registers them (a `type-name`, at most 32
 * characters here): anything else the IdP sent is not repeated, as it is
 * the IdP's to fill (a line break, a megabyte).
 */
const TYPE_NAME = /^[\w.-]{1,32}$/

/**
 * The reason for an answer refused for its `token_type`, naming it (as
 * oauth4webapi lower-cased it); `undefined` for any other error. Only the
 * type is read of the answer oauth4webapi holds as the cause, never its
 * tokens.
 */
export function unknownTokenType(err: unknown): string | undefined {
  if (!(err instanceof oauth.UnsupportedOperationError) || err.message !== UNSUPPORTED_TOKEN_TYPE)
    return undefined
  const body = (err.cause as { body?: { token_type?: unknown } } | undefined)?.body
  const type = body?.token_type
  if (typeof type !== 'string') return undefined
  const named = TYPE_NAME.test(type) ? `token_type "${type}"` : 'a token_type'
  return `the identity provider issued a token of ${named}, which is neither Bearer nor DPoP (RFC 6749 §7.1), so no Authorization header the gateway sends would carry it`
}

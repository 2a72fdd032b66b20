/**
 * What oauth4webapi's refusal of a JWT's `alg` means, in words an
 * operator can act on. It checks an ID token's (and a signed userinfo's)
 * `alg` against the client's registration, else the issuer's advertised
 * list, else OIDC Core §3.1.3.7's default, RS256, and says only
 * "unexpected JWT "alg" header parameter": an OP that signs ES256 and
 * advertises no `id_token_signing_alg_values_supported` (OpenID Connect
 * Discovery 1.0 §3 requires it) failed every sign-in so, with nothing to
 * say which algorithm or why. Likewise its "Invalid JWT", for a token not
 * in three parts.
 */
import * as oauth from 'oauth4webapi'

/** oauth4webapi's message for the refusal (its checkSigningAlgorithm). */
const UNEXPECTED_ALG = 'unexpected JWT "alg" header parameter'

/** oauth4webapi's message for a JWT that is not three (or five) dot-separated parts (its validateJwt). */
const INVALID_JWT = 'Invalid JWT'

/**
 * What is wrong with a JWT oauth4webapi found not to be one, from its
 * parts (`jws`, the cause it gives): the token itself is never repeated.
 * LemonLDAP::NG 2.16 writes an unsigned ID token or userinfo answer
 * (`alg: none`, its relying-party option) as `header.payload`, where RFC
 * 7519 §6.1 ends an unsecured JWT with a `.` and an empty signature: every
 * sign-in failed "Invalid JWT", which named neither the token nor the
 * setting to change.
 */
function malformedJwt(jws: unknown, userinfo: boolean): string | undefined {
  if (typeof jws !== 'string') return undefined
  const what = userinfo ? 'the userinfo answer' : 'the ID token'
  const parts = jws.split('.')
  let alg: unknown
  try {
    alg = (JSON.parse(Buffer.from(parts[0] ?? '', 'base64url').toString('utf8')) as { alg?: unknown }).alg
  } catch {}
  if (parts.length === 2 && alg === 'none') {
    const fix = userinfo
      ? 'have the identity provider answer userinfo as JSON, or sign it'
      : 'have the identity provider sign ID tokens (RS256), as OIDC Core §2 allows "none" only to a client registered for it'
    return `${INVALID_JWT}: ${what} is unsigned (alg "none") and in two parts, where RFC 7519 §6.1 ends an unsecured JWT with "." and an empty signature; ${fix}`
  }
  const n = parts.length
  return `${INVALID_JWT}: ${what} has ${n} dot-separated part${n === 1 ? '' : 's'}, where a signed JWT has three (RFC 7515 §7.1)`
}

/** An algorithm name as JWA writes them; anything else the IdP sent is not repeated. */
const ALG_NAME = /^[A-Za-z0-9+._-]{1,32}$/

/**
 * `err`'s message, with the algorithm and what it was checked against when
 * it refuses an `alg`; `userinfo` when the JWT was a signed userinfo
 * answer (OIDC Core §5.3.2), checked against its own list.
 */
export function explainedMessage(err: Error, userinfo = false): string {
  if (err instanceof oauth.OperationProcessingError && err.message === INVALID_JWT)
    return malformedJwt(err.cause, userinfo) ?? err.message
  if (!(err instanceof oauth.OperationProcessingError) || err.message !== UNEXPECTED_ALG) return err.message
  const { header, expected, reason } = (err.cause ?? {}) as {
    header?: { alg?: unknown }
    expected?: unknown
    reason?: unknown
  }
  const alg = typeof header?.alg === 'string' && ALG_NAME.test(header.alg) ? header.alg : undefined
  const signed =
    alg === undefined ? 'the token is signed with another algorithm' : `the token is signed ${alg}`
  const listed = [expected]
    .flat()
    .filter((name): name is string => typeof name === 'string' && ALG_NAME.test(name))
    .join(', ')
  if (alg === 'none' && !userinfo && reason === 'client configuration')
    return `${UNEXPECTED_ALG}: the ID token is unsigned (alg "none"), which OIDC Core §2 allows only to a client registered for it, and Gatehouse registers for none; have the identity provider sign ID tokens (${listed})`
  switch (reason) {
    case 'default value':
      return `${UNEXPECTED_ALG}: ${signed}, and the identity provider advertises no id_token_signing_alg_values_supported (OpenID Connect Discovery 1.0 §3 requires it), which leaves ${listed || 'RS256'} only (OIDC Core §3.1.3.7); fix the identity provider's metadata, or have it sign ID tokens ${listed || 'RS256'}`
    case 'authorization server metadata':
      return `${UNEXPECTED_ALG}: ${signed}, which is not in its ${userinfo ? 'userinfo' : 'id_token'}_signing_alg_values_supported (${listed})`
    case 'client configuration':
      return `${UNEXPECTED_ALG}: ${signed}, which is not one this client accepts (${listed})`
    default:
      return err.message
  }
}

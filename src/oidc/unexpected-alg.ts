/**
 * What oauth4webapi's refusal of a JWT's `alg` means, in words an
 * operator can act on. It checks an ID token's (and a signed userinfo's)
 * `alg` against the client's registration, else the issuer's advertised
 * list, else OIDC Core §3.1.3.7's default, RS256, and says only
 * "unexpected JWT "alg" header parameter": an OP that signs ES256 and
 * advertises no `id_token_signing_alg_values_supported` (OpenID Connect
 * Discovery 1.0 §3 requires it) failed every sign-in so, with nothing to
 * say which algorithm or why.
 */
import * as oauth from 'oauth4webapi'

/** oauth4webapi's message for the refusal (its checkSigningAlgorithm). */
const UNEXPECTED_ALG = 'unexpected JWT "alg" header parameter'

/** An algorithm name as JWA writes them; anything else the IdP sent is not repeated. */
const ALG_NAME = /^[A-Za-z0-9+._-]{1,32}$/

/**
 * `err`'s message, with the algorithm and what it was checked against when
 * it refuses an `alg`; `userinfo` when the JWT was a signed userinfo
 * answer (OIDC Core §5.3.2), checked against its own list.
 */
export function explainedMessage(err: Error, userinfo = false): string {
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

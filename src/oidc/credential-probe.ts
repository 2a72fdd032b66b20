import { randomBytes } from 'node:crypto'
import * as oauth from 'oauth4webapi'
import { VSCHAR } from '../config/secret-text.js'
import type { ClientAuthMethod } from '../config/types.js'
import type { GatehouseError } from '../errors.js'
import { type IdpFailure, idpFailureOf } from './translate.js'

/** What one probe of the client's credentials found. */
export interface CredentialProbe {
  /**
   * `accepted`: the IdP authenticated the client; `refused`: it did not;
   * `inconclusive`: it could not be asked (down, or answers that say neither).
   */
  readonly verdict: 'accepted' | 'refused' | 'inconclusive'
  /**
   * The endpoint whose answer gave the verdict: the token endpoint's, or,
   * when that one said neither, the revocation endpoint's.
   */
  readonly endpoint: 'token' | 'revocation'
  /** What the IdP answered, in words; with the revocation endpoint's, the token endpoint's too. */
  readonly answer: string
  readonly failure?: IdpFailure
}

/** How the probes reach the IdP, and how a failed call becomes a gateway error. */
export interface ProbeContext {
  readonly as: oauth.AuthorizationServer
  readonly client: oauth.Client
  readonly options: Parameters<typeof oauth.refreshTokenGrantRequest>[4]
  readonly translate: (operation: 'refresh' | 'revocation', err: unknown) => GatehouseError
  /** The client secret the probe sends, with client_secret_basic or client_secret_post. */
  readonly clientSecret?: string | undefined
}

/**
 * Asks the token endpoint for something it must refuse, authenticated
 * as the gateway with `method`: a refresh-token grant (RFC 6749 §6) for a
 * random token nobody was ever issued. An IdP authenticates a confidential
 * client before it looks at the grant (§3.2.1), so `invalid_grant`, or any
 * other refusal of the grant that §5.2 defines, says the credentials work,
 * and `invalid_client` or a 401 says they do not. `invalid_request` says
 * so only of a secret of printable ASCII (Appendix A.2): one with other
 * characters may be what the request was refused for.
 *
 * Some IdPs look at the grant first and answer a token they do not know
 * the same whatever the credentials (Glewlwyd: an empty 400). When the
 * token endpoint's answer says neither, and the IdP has a revocation
 * endpoint that takes `method`, the probe asks it to revoke a random
 * token: RFC 7009 §2.1 has it authenticate the client first, and §2.2
 * answer 200 for a token it does not know. Nothing real is redeemed,
 * consumed or revoked.
 */
export async function probeCredentials(
  context: ProbeContext,
  method: ClientAuthMethod,
  auth: oauth.ClientAuth,
): Promise<CredentialProbe> {
  const token = await atTokenEndpoint(context, auth)
  if (token.verdict !== 'inconclusive') return token
  // Unreachable or too slow: the revocation endpoint, on the same host, would only double the wait.
  if (token.failure?.answer === 'network' || token.failure?.answer === 'timeout') return token
  const { as } = context
  if (!as.revocation_endpoint) {
    return { ...token, answer: `${token.answer}; no revocation_endpoint to ask instead` }
  }
  // RFC 8414 §2: an absent list means client_secret_basic only. One that
  // is no list of strings is read as absent, as check --online says.
  const listed: unknown = as.revocation_endpoint_auth_methods_supported
  const advertised = Array.isArray(listed) && listed.every((m) => typeof m === 'string')
  const methods = advertised ? listed : ['client_secret_basic']
  if (!methods.includes(method)) {
    // Said as the IdP's document has it: an operator who looks there for
    // a list the IdP never sent would find nothing to fix.
    const why = advertised
      ? `revocation_endpoint_auth_methods_supported: ${methods.join(', ') || 'none'}`
      : 'no revocation_endpoint_auth_methods_supported: client_secret_basic only, RFC 8414 §2'
    return { ...token, answer: `${token.answer}; the revocation endpoint does not take ${method} (${why})` }
  }
  const revocation = await atRevocationEndpoint(context, auth)
  return revocation.verdict === 'inconclusive'
    ? {
        ...revocation,
        answer: `token endpoint: ${token.answer}; revocation endpoint: ${revocation.answer}`,
      }
    : { ...revocation, answer: `${revocation.answer} (token endpoint: ${token.answer})` }
}

async function atTokenEndpoint(
  { as, client, options, translate, clientSecret }: ProbeContext,
  auth: oauth.ClientAuth,
): Promise<CredentialProbe> {
  const endpoint = 'token'
  try {
    const response = await oauth.refreshTokenGrantRequest(
      as,
      client,
      auth,
      randomBytes(32).toString('base64url'),
      options,
    )
    await oauth.processRefreshTokenResponse(as, client, response)
    return {
      verdict: 'accepted',
      endpoint,
      answer: 'tokens for a random refresh token (the IdP does not check them!)',
    }
  } catch (err) {
    const failure = idpFailureOf(translate('refresh', err))
    if (!failure) return { verdict: 'inconclusive', endpoint, answer: (err as Error).message }
    const answer = failure.reason
    if (failure.answer === 'unauthorized_client') {
      return {
        verdict: 'accepted',
        endpoint,
        answer: `${answer} (authenticated, but the refresh_token grant is not allowed)`,
        failure,
      }
    }
    if (failure.verdict === 'client_refused') return { verdict: 'refused', endpoint, answer, failure }
    // invalid_request says the request is malformed. LemonLDAP::NG answers
    // a random refresh token so once it has authenticated the client; but
    // oidc-provider answers a Basic header so, before it looks at the
    // client, when the secret holds what RFC 6749 Appendix A.2 does not
    // allow (a trailing newline, a non-ASCII character): that secret is refused.
    if (failure.answer === 'invalid_request' && clientSecret !== undefined && !VSCHAR.test(clientSecret))
      return {
        verdict: 'refused',
        endpoint,
        answer: `${answer} (the secret has characters outside printable ASCII, RFC 6749 Appendix A.2)`,
        failure,
      }
    // A refusal with no OAuth error to read (an empty 400, as Glewlwyd gives
    // whatever the credentials) says nothing of the client: only a named
    // error about the grant proves the client was authenticated first.
    // Nor does a code RFC 6749 §5.2 does not define: oidc-provider answers
    // a client_secret_post it cannot read `invalid_client_metadata`.
    if (
      failure.verdict === 'unavailable' ||
      failure.answer === 'bad_request' ||
      failure.answer === 'refused' ||
      failure.answer === 'other_oauth_error'
    )
      return { verdict: 'inconclusive', endpoint, answer, failure }
    return { verdict: 'accepted', endpoint, answer, failure }
  }
}

/**
 * RFC 7009 §2.2: 200 for a token the IdP does not know, once it has
 * authenticated the client; §2.2.1 and RFC 6749 §5.2: `invalid_client`,
 * or a 401, when it has not. Any other answer says neither: unlike the
 * token endpoint's, this one is asked only because that one did not say.
 */
async function atRevocationEndpoint(
  { as, client, options, translate }: ProbeContext,
  auth: oauth.ClientAuth,
): Promise<CredentialProbe> {
  const endpoint = 'revocation'
  try {
    const response = await oauth.revocationRequest(as, client, auth, randomBytes(32).toString('base64url'), {
      ...options,
      // The hint Gatehouse sends at logout (revocation.ts), so the probe takes the same path.
      additionalParameters: { token_type_hint: 'refresh_token' },
    })
    await oauth.processRevocationResponse(response)
    // The body of a 200 is empty or ignored (RFC 7009 §2.2): release the connection.
    await response.body?.cancel().catch(() => {})
    return { verdict: 'accepted', endpoint, answer: `HTTP ${response.status} to a random token` }
  } catch (err) {
    const failure = idpFailureOf(translate('revocation', err))
    if (!failure) return { verdict: 'inconclusive', endpoint, answer: (err as Error).message }
    const verdict = failure.verdict === 'client_refused' ? 'refused' : 'inconclusive'
    return { verdict, endpoint, answer: failure.reason, failure }
  }
}

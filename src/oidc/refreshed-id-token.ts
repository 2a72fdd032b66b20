/**
 * OIDC Core §12.2: an ID token a refresh returns "MUST" name the same user
 * (`sub`) as the one of the original authentication. oauth4webapi checks
 * its `iss`, `aud`, `azp` and times, but cannot know the login's `sub`: an
 * OP that mixed up its grants answered a refresh with another user's ID
 * token, and the session kept it, sending it as `id_token_hint` at logout
 * and as the subject of `subjectToken: id_token` exchanges while it still
 * showed its own user. Read from oauth4webapi's validated claims.
 */
import { decodeJwt } from 'jose'
import * as oauth from 'oauth4webapi'

/**
 * A refresh answer whose ID token names another user than the login's.
 * Thrown where the answer is read, while its rotated refresh token can
 * still be found (rotated.ts), and made a gateway error by `translateIdpError`.
 * Neither `sub` is in it: a log line names the session, not its user.
 */
export class RefreshedIdTokenOfAnotherUser extends Error {
  constructor() {
    super(
      "the ID token of the refresh answer names another user (sub) than the session's own ID token, which OIDC Core §12.2 forbids",
    )
    this.name = 'RefreshedIdTokenOfAnotherUser'
  }
}

/**
 * Throws `RefreshedIdTokenOfAnotherUser` when `answer`, as oauth4webapi
 * validated it, has an ID token whose `sub` is not that of `held`, the ID
 * token the session holds (its login's, or a refresh's that passed this
 * check). An answer without an ID token passes: a refresh need not carry one.
 */
export function refuseAnotherUser(answer: oauth.TokenEndpointResponse, held: string | undefined): void {
  const claims = oauth.getValidatedIdTokenClaims(answer)
  if (claims === undefined || held === undefined) return
  let sub: unknown
  try {
    sub = decodeJwt(held).sub
  } catch {
    // The session's own ID token was validated when it came; one that no longer decodes says nothing.
    return
  }
  if (typeof sub === 'string' && claims.sub !== sub) throw new RefreshedIdTokenOfAnotherUser()
}

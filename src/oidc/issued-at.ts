/**
 * When an ID token says it was issued (`iat`). oauth4webapi checks that it
 * has one, and checks `exp` and `nbf` against this host's clock within a
 * tolerance, but takes any `iat`: an ID token dated minutes ahead (the
 * IdP's clock fast, this host's slow, or a token minted for later) was
 * taken at sign-in and at every refresh. OIDC Core §3.1.3.7 item 10: "The
 * iat Claim can be used to reject tokens that were issued too far away
 * from the current time"; the acceptable range is the client's. Here it is
 * five minutes (ISSUED_AHEAD_TOLERANCE_SECONDS), not the 30 s of `exp` and
 * `nbf`: an ID token rarely carries `nbf` and its `exp` lies ahead anyway,
 * so an IdP whose clock ran a minute fast signed users in before this check
 * existed, and a bound that tight would refuse every sign-in and refresh
 * there. Too far in the past is `exp`'s to say. Read from oauth4webapi's
 * validated claims, never parsed here.
 */
import * as oauth from 'oauth4webapi'

/**
 * How far this host's clock and the IdP's may differ, seconds: the
 * tolerance oauth4webapi applies to `exp` and `nbf` (its default), set on
 * the client explicitly (`oauth.clockTolerance`) so the `iat` bound is
 * always the same number.
 */
export const CLOCK_TOLERANCE_SECONDS = 30

/**
 * How far ahead of this host's clock an ID token's `iat` may be, seconds:
 * five minutes, the clock skew Kerberos and .NET's token validation allow.
 * A clock off by more than that is broken, not drifting.
 */
export const ISSUED_AHEAD_TOLERANCE_SECONDS = 300 // 5 min

/**
 * An ID token dated ahead of this host's clock by more than its tolerance.
 * Thrown where the answer is read, while its rotated refresh token can
 * still be found (rotated.ts), and made a gateway error by `translateIdpError`.
 */
export class IdTokenIssuedAhead extends Error {
  /** Seconds between the token's `iat` and this host's now. */
  readonly ahead: number
  readonly tolerance: number

  constructor(ahead: number, tolerance: number) {
    super(
      `the ID token says it was issued (iat) ${ahead} s ahead of this host's clock, more than the ${tolerance} s the two clocks may differ by (OIDC Core §3.1.3.7)`,
    )
    this.name = 'IdTokenIssuedAhead'
    this.ahead = ahead
    this.tolerance = tolerance
  }
}

/**
 * Throws `IdTokenIssuedAhead` when `answer`, as oauth4webapi validated it,
 * has an ID token issued more than `tolerance` seconds after `now` (epoch
 * ms, the gateway's clock). An answer without an ID token passes: a
 * refresh need not carry one (OIDC Core §12.2).
 */
export function refuseIssuedAhead(
  answer: oauth.TokenEndpointResponse,
  now: number,
  tolerance: number = ISSUED_AHEAD_TOLERANCE_SECONDS,
): void {
  const claims = oauth.getValidatedIdTokenClaims(answer)
  if (claims === undefined) return
  const ahead = claims.iat - Math.floor(now / 1000)
  if (ahead > tolerance) throw new IdTokenIssuedAhead(ahead, tolerance)
}

import { isGatehouseError } from '../errors.js'
import type { OidcClient } from '../oidc/client.js'
import { LOGOUT_TOKEN_CLOCK_TOLERANCE, LOGOUT_TOKEN_MAX_AGE } from '../oidc/logout-token.js'
import type { IdentityProviders } from '../oidc/providers.js'
import {
  type HeldHandover,
  HeldLogoutTokens,
  type HeldOutcome,
  type HeldToken,
  type HeldUntil,
} from './held-logout-tokens.js'
import type { LogoutCarryOut } from './logout-carry-out.js'
import { type LogoutTokenChecks, unreachable, type Verified } from './logout-token-checks.js'
import { claimedBy } from './logout-token-clients.js'

/** A token held until its issuer's keys can be read, as it passes from one app to the next. */
export interface HeldLogout extends HeldToken {
  /** The provider whose own path (`…/backchannel-logout/<name>`) it was posted to; absent: the shared path. */
  readonly via: string | undefined
}

/** A held token with the providers of this app it claims. */
export interface Held extends HeldLogout {
  readonly named: readonly OidcClient[]
}

/**
 * A token held for want of keys is given up once the verifier would
 * refuse it as too old anyway: its oldest acceptable iat, and the skew
 * allowed, from when it came.
 */
const LOGOUT_TOKEN_LIFE_MS = (LOGOUT_TOKEN_MAX_AGE + LOGOUT_TOKEN_CLOCK_TOLERANCE) * 1_000

export interface HeldLogoutAttemptsDeps {
  readonly providers: IdentityProviders
  readonly checks: LogoutTokenChecks
  readonly carrier: LogoutCarryOut
  /** Where what this app still holds unverified goes when it closes, and comes from (server/lasting.ts). */
  readonly handover: HeldHandover<HeldLogout>
  /** The frontend whose routes these are (`frontends[].name`); `''` without `frontends:`. */
  readonly frontend: string
}

/**
 * The logout tokens one app holds unverified, until their issuer's keys
 * can be read. What is held is not verified yet: it is checked with the
 * providers of the app that serves when the keys can be read. A reload
 * that retires this app passes it on to the next (`close`), as the IdP
 * will not send it again.
 */
export function heldLogoutAttempts(deps: HeldLogoutAttemptsDeps): {
  hold(token: Held): void
  /** Stops taking tokens other apps pass, and passes on what this app holds. */
  close(): void
} {
  const { providers, checks, carrier, handover, frontend } = deps
  const held = new HeldLogoutTokens<Held>({ attempt: settleHeld, lifeMs: LOGOUT_TOKEN_LIFE_MS })
  const untake = handover.serve(
    frontend,
    (tokens) => {
      for (const token of tokens) adopt(token)
    },
    (stop) => held.lastPass(stop),
  )

  /** A token another app held, to be checked with this app's providers, within the life it had. */
  function adopt({ until, ...token }: HeldUntil<HeldLogout>) {
    const named =
      token.via === undefined
        ? claimedBy(token.token, providers)
        : [providers.get(token.via)].filter((oidc) => oidc !== undefined)
    // No provider of this app claims it (a reload removed its own): it is
    // refused as a delivery for no provider is, once it is tried.
    held.hold({ ...token, issuer: named[0]?.registration.issuer ?? token.issuer, named }, until)
  }

  /**
   * One try at a token held since its issuer's keys could not be read:
   * verified as any delivery is, and carried out only then, kept `owed`
   * (the IdP was answered 503, and its resend, if it sends one, is told
   * the logout is done). Refused, it is logged as a delivery's refusal is.
   * `stop` ends the fetch of the issuer's keys when the shutdown's drain
   * does, and the wait on the store of carrying it out: what that left
   * undone is owed (`carriedOut`), and dropped with the rest, said to be.
   */
  async function settleHeld(token: Held, stop: AbortSignal): Promise<HeldOutcome> {
    let found: Verified
    try {
      found = await checks.verified(token.token, token.named, stop)
    } catch (err) {
      if (unreachable(err)) return 'unreachable'
      // The keys were read, but too recently to read again for its kid.
      if (isGatehouseError(err) && err.code === 'GATEHOUSE_ERR_IDP_UNAVAILABLE') return 'later'
      checks.refused(token.log, err, token.named)
      return 'settled'
    }
    const outcomes = await carrier.carriedOut(found, token.named, token.at, token.log, 'owed', stop)
    // Another delivery of it (the IdP's resend) at work, and it may yet fail: look again next pass.
    if (outcomes.some((settled) => settled.status === 'fulfilled' && settled.value.outcome === 'held'))
      return 'later'
    for (const settled of outcomes)
      if (settled.status === 'fulfilled' && typeof settled.value.outcome === 'number')
        token.log.info(
          { idp: settled.value.what.idp, ended: settled.value.outcome },
          "back-channel logout carried out once the issuer's keys could be read",
        )
    return 'settled'
  }

  return {
    hold: (token) => held.hold(token),
    close: () => {
      untake()
      handover.pass(
        frontend,
        held.release().map(({ named: _, ...token }) => token),
      )
    },
  }
}

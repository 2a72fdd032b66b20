import { type GatehouseError, gatehouseError } from '../errors.js'
import type { IdpOperation } from '../oidc/answers.js'
import { idpFailureOf } from '../oidc/translate.js'

/**
 * How long, after the IdP refused the gateway's own client credentials, no
 * token request they would be refused for goes to that provider: 5 minutes.
 *
 * A refusal of the client is a configuration error that no retry mends: it
 * lasts until an operator acts, and the usual fix, a reload with the new
 * secret or key, builds new token parts and so asks at once. Meanwhile
 * every failed client authentication counts against the gateway at the
 * IdP: some lock a client out after repeated failures, and fail2ban's
 * defaults ban an address after 5 failures in 10 minutes, which a call
 * per request reaches in seconds, and even a call a minute within 5
 * minutes. A call per 5 minutes is at most 3 in any 10 minutes, and still
 * sees a fix made at the IdP's side (a secret renewed, a client
 * re-enabled) within the same 5 minutes.
 */
export const CLIENT_REFUSED_BACK_OFF = 300_000 // 5 min

/** The token-endpoint grants made for a session or a client route. */
export type ClientGrant = 'refresh_token' | 'token_exchange' | 'client_credentials'

/** The grant of each token-endpoint call made for a session or a client route. */
const GRANTS: Partial<Record<IdpOperation, ClientGrant>> = {
  refresh: 'refresh_token',
  route_refresh: 'refresh_token',
  unbound_route_refresh: 'refresh_token',
  token_exchange: 'token_exchange',
  client_credentials: 'client_credentials',
}

/**
 * Per provider, when the IdP last refused the gateway's client credentials,
 * so that one process makes at most one such call per
 * CLIENT_REFUSED_BACK_OFF however many sessions and requests need one.
 * Per provider, not per session: the credentials are the gateway's, and
 * each session asking for itself would cost the IdP a failure per session.
 * A refused authentication (`invalid_client`, a bare 401) holds back every
 * grant, which all authenticate the same way; `unauthorized_client` only
 * its own (RFC 6749 §5.2: the client, authenticated, may not use this
 * grant), so that a client route the client is not allowed does not stop
 * the sessions' refreshes. The sessions stay (it is not their fault), and a
 * still-valid token is still used. Bounded by the configured providers: a
 * refusal is noted only for one that answered.
 */
export class RefusedClient {
  readonly #now: () => number
  readonly #first: string | undefined
  readonly #backOff: number
  /** `${grant or *} ${idp}` → when its back-off is over, ms. */
  readonly #until = new Map<string, number>()

  /**
   * `first`: the name of the first provider, which callers may also call
   * `undefined`, so that both are one provider here.
   */
  constructor(now: () => number, first?: string, backOffMs = CLIENT_REFUSED_BACK_OFF) {
    this.#now = now
    this.#first = first
    this.#backOff = backOffMs
  }

  /**
   * Notes `err`, a call to provider `idp` (the first: `undefined`) that
   * failed, if the IdP refused the gateway's credentials in it (the
   * `client_refused` verdict).
   */
  failed(idp: string | undefined, err: unknown): void {
    const failure = idpFailureOf(err)
    const grant = failure?.verdict === 'client_refused' ? GRANTS[failure.operation] : undefined
    if (grant === undefined) return
    const key = this.#key(idp, failure!.answer === 'unauthorized_client' ? grant : '*')
    this.#until.set(key, this.#now() + this.#backOff)
  }

  /**
   * While the back-off of a refusal that covers `grant` at `idp` runs, the
   * answer for a request that would call the IdP: the refusal's 500, with
   * a log `cause` saying the IdP was not asked. Undefined when it may be asked.
   */
  notAsked(idp: string | undefined, grant: ClientGrant): GatehouseError | undefined {
    const now = this.#now()
    for (const key of [this.#key(idp, '*'), this.#key(idp, grant)]) {
      const until = this.#until.get(key)
      if (until === undefined) continue
      if (now >= until) {
        this.#until.delete(key)
        continue
      }
      return Object.assign(gatehouseError('GATEHOUSE_ERR_IDP_CLIENT_REFUSED'), {
        reason: `identity provider not asked: it refused the gateway's client credentials less than ${this.#backOff / 1_000} s ago`,
      })
    }
    return undefined
  }

  #key(idp: string | undefined, grant: ClientGrant | '*'): string {
    return `${grant} ${idp ?? this.#first ?? ''}`
  }
}

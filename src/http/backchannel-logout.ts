import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import { errorCatalogue, gatehouseError, isGatehouseError, StoreUnavailableError } from '../errors.js'
import type { OidcClient } from '../oidc/client.js'
import {
  LOGOUT_TOKEN_CLOCK_TOLERANCE,
  LOGOUT_TOKEN_MAX_AGE,
  type LogoutTokenVerifier,
  refusalKind,
  unfetchedReason,
} from '../oidc/logout-token.js'
import type { IdentityProviders } from '../oidc/providers.js'
import { RepeatedLines, repeatedField } from '../repeated-lines.js'
import type { Sessions } from '../session/sessions.js'
import type { ReplayCache, ReplayKept } from '../tokens/types.js'
import {
  type HeldHandover,
  HeldLogoutTokens,
  type HeldOutcome,
  type HeldToken,
  type HeldUntil,
} from './held-logout-tokens.js'
import { claimedBy, clientsOf, replayKey } from './logout-token-clients.js'
import type { LogoutAttempt, OwedLogout, OwedLogouts } from './owed-logouts.js'
import { lookedUpBy, sessionsOfClient } from './sessions-of-client.js'

export interface BackchannelLogoutDeps {
  readonly config: {
    readonly auth: Pick<GatehouseConfig['auth'], 'basePath'>
    readonly session: Pick<GatehouseConfig['session'], 'absoluteTimeout'>
  }
  readonly providers: IdentityProviders
  readonly sessions: Sessions
  readonly replay: ReplayCache
  /** The process's logouts owed since a store outage, which outlive this app (server/lasting.ts). */
  readonly owed: OwedLogouts<OwedLogout>
  /** Where what this app still holds unverified goes when it closes, and comes from (server/lasting.ts). */
  readonly handover: HeldHandover<HeldLogout>
  /** The frontend whose routes these are (`frontends[].name`); `''` without `frontends:`. */
  readonly frontend: string
  readonly now: () => number
}

/** A token held until its issuer's keys can be read, as it passes from one app to the next. */
export interface HeldLogout extends HeldToken {
  /** The provider whose own path (`…/backchannel-logout/<name>`) it was posted to; absent: the shared path. */
  readonly via: string | undefined
}

/** A held token with the providers of this app it claims. */
interface Held extends HeldLogout {
  readonly named: readonly OidcClient[]
}

/**
 * A token held for want of keys is given up once the verifier would
 * refuse it as too old anyway: its oldest acceptable iat, and the skew
 * allowed, from when it came.
 */
const LOGOUT_TOKEN_LIFE_MS = (LOGOUT_TOKEN_MAX_AGE + LOGOUT_TOKEN_CLOCK_TOLERANCE) * 1_000

/** A back-channel logout request: the form §2.5 posts, or no body at all. */
interface LogoutRequest {
  Body: URLSearchParams | undefined
}

/** How long a logout token's `jti` is remembered once carried out: past its acceptable age, plus skew. */
const JTI_TTL_MS = 5 * 60_000

/**
 * How long an IdP session (or a user, for a token naming only a `sub`) a
 * logout token ended is remembered for the sign-ins of it still
 * completing: a code issued before the logout may be
 * redeemed until it expires, at most 10 minutes (OIDC Core §3.1.3.2 leaves
 * its lifetime to the OP; RFC 6749 §4.1.2 recommends no more than that).
 */
const LOGGED_OUT_TTL_MS = 10 * 60_000

/**
 * How long a logout token's `jti` is held while it is carried out, so a
 * parallel delivery of it is asked to come again meanwhile: no longer than
 * the `Retry-After` of the 503 its failure gets, nor of the 503 that
 * parallel delivery gets, so the resend finds the hold over. The store is
 * what fails, and a store gone (Redis killed half way) cannot take the
 * forget either; a `jti` noted for JTI_TTL_MS up front then refused the
 * IdP's resend as a replay and the sessions not yet ended ran on. A
 * delivery that comes after the hold while the first is still at work
 * ends the same sessions again, which changes nothing.
 */
const JTI_HOLD_MS =
  Math.min(
    errorCatalogue.GATEHOUSE_ERR_STORE_UNAVAILABLE.retryAfter,
    errorCatalogue.GATEHOUSE_ERR_LOGOUT_IN_PROGRESS.retryAfter,
  ) * 1_000

/**
 * OpenID Connect Back-Channel Logout 1.0 at `{basePath}/backchannel-logout`,
 * and at `{basePath}/backchannel-logout/<provider name>` for each provider.
 *
 * A logout token ends only sessions of the clients it is for: it is
 * verified against one provider's issuer, client id and JWKS (§2.6), and
 * the sessions it names are looked up in the `sub` and `sid` indexes of
 * every provider entry with that issuer and client id (usually that one
 * alone), so the same `sub` or `sid` at another issuer or client is never
 * touched. On the shared path the candidates are the providers whose
 * issuer and client id the token claims, and the token is for each of
 * their clients (its `aud` may name several); on a provider's own path,
 * for that provider's alone.
 */
export async function backchannelLogoutRoute(app: FastifyInstance, deps: BackchannelLogoutDeps) {
  const { config, providers, sessions, replay, owed, handover, frontend } = deps
  const base = config.auth.basePath
  /** By provider, with the metadata each was made from: a reload may discover the IdP anew (rediscovery.ts). */
  const verifiers = new Map<string, { readonly metadata: object; readonly verifier: LogoutTokenVerifier }>()
  // Anyone can post here: junk tokens must not write a warning each.
  const refusalLines = new RepeatedLines(undefined, deps.now)
  // What is owed outlives this app: the app a reload builds carries it out.
  const unserve = owed.serve((what, stop) => carryOut(what, 'owed', stop))
  // What is held is not verified yet: it is checked with the providers of
  // the app that serves when the keys can be read. A reload that retires
  // this app passes it on to the next, as the IdP will not send it again.
  const held = new HeldLogoutTokens<Held>({ attempt: settleHeld, lifeMs: LOGOUT_TOKEN_LIFE_MS })
  const untake = handover.serve(
    frontend,
    (tokens) => {
      for (const token of tokens) adopt(token)
    },
    (stop) => held.lastPass(stop),
  )
  app.addHook('onClose', async () => {
    unserve()
    untake()
    handover.pass(
      frontend,
      held.release().map(({ named: _, ...token }) => token),
    )
  })

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

  /** The verified claims, by the one of `candidates` that signed the token. */
  async function verified(token: string, candidates: readonly OidcClient[], stop?: AbortSignal) {
    let failure: unknown = gatehouseError(
      'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN',
      'The logout token is not valid: no configured provider has its issuer and audience.',
    )
    for (const oidc of candidates) {
      const metadata = oidc.metadata
      if (!metadata) {
        failure = gatehouseError('GATEHOUSE_ERR_IDP_UNAVAILABLE')
        continue
      }
      if (!metadata.jwks_uri) {
        // Not an outage to wait out: the IdP must publish its keys first.
        failure = gatehouseError(
          'GATEHOUSE_ERR_IDP_INCOMPATIBLE',
          'The identity provider advertises no jwks_uri (OpenID Connect Discovery 1.0 §3 requires one), so no logout token of its can be verified.',
        )
        continue
      }
      const made = verifiers.get(oidc.name)
      let verifier = made?.metadata === metadata ? made.verifier : undefined
      if (!verifier) {
        verifier = oidc.logoutTokenVerifier(
          {
            issuer: metadata.issuer,
            jwksUri: metadata.jwks_uri,
            idTokenAlgorithms: metadata.id_token_signing_alg_values_supported,
          },
          deps.now,
        )
        verifiers.set(oidc.name, { metadata, verifier })
      }
      try {
        return { oidc, claims: await verifier.verify(token, stop) }
      } catch (err) {
        if (!isGatehouseError(err)) throw err
        failure = err
      }
    }
    throw failure
  }

  /**
   * The IdP believes the user signed out; a refusal here leaves their
   * sessions running, so an operator must hear why, and with several
   * providers whose: `named`, the entries whose issuer and client id the
   * token claimed (or whose own path it came to), by their config names.
   * The reason is ours, naming the check that failed, never the token's
   * contents: none matching, nothing of its claims is named. The endpoint
   * is unauthenticated, so one line per provider and reason a minute; the
   * providers in the key, as with the reason alone corp's refusals in the
   * minute partner's began were counted as more of partner's, never
   * written. Still a bounded set: the names are the config's.
   */
  function refused<E>(log: FastifyBaseLogger, err: E, named: readonly OidcClient[] = []): E {
    if (isGatehouseError(err) && err.code === 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN') {
      const idp = named.map((oidc) => oidc.name).join(',')
      const repeated = refusalLines.admit(`${idp} ${refusalKind(err)}`)
      if (repeated !== undefined)
        log.warn(
          {
            code: err.code,
            ...(idp === '' ? {} : { idp }),
            reason: err.message,
            ...repeatedField(repeated),
          },
          'logout token refused',
        )
    }
    return err
  }

  async function end(
    request: FastifyRequest<LogoutRequest>,
    candidates: (token: string) => readonly OidcClient[],
    via?: string,
  ) {
    // What the token claimed, once read: the refusal's line names them.
    let named: readonly OidcClient[] = []
    const claimed = (token: string) => {
      named = candidates(token)
      return named
    }
    try {
      return await ended(request, claimed, via)
    } catch (err) {
      throw refused(request.log, err, named)
    }
  }

  async function ended(
    request: FastifyRequest<LogoutRequest>,
    candidates: (token: string) => readonly OidcClient[],
    via: string | undefined,
  ) {
    const tokens = request.body?.getAll('logout_token') ?? []
    // §2.5 sends one logout_token. Of two, the one acted on would be the
    // parser's choice (the last), not what a reader of the request, or
    // another component in front of the gateway, takes it to be; neither
    // is carried out, or used up. §2.8: a request that is not valid is a
    // 400, invalid_request.
    if (tokens.length > 1)
      throw gatehouseError(
        'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN',
        'The logout request is not valid: it carries logout_token more than once (Back-Channel Logout 1.0 §2.5 sends one).',
      )
    const [token] = tokens
    if (token === undefined || token === '')
      throw gatehouseError('GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN', 'logout_token is missing.')
    const named = candidates(token)
    const at = deps.now()
    let found: Awaited<ReturnType<typeof verified>>
    try {
      found = await verified(token, named)
    } catch (err) {
      // The IdP gets its 503 with Retry-After, but oidc-provider and
      // Keycloak send a logout token once, whatever the answer: held as it
      // came, the token is verified once the keys can be read (or read
      // again, for a kid rotated in just after they were), and only then
      // carried out.
      if ((unreachable(err) || awaitingKey(err)) && named[0]) {
        const reason = unfetchedReason(err)
        held.hold({
          token,
          issuer: named[0].registration.issuer,
          idp: named[0].name,
          at,
          log: request.log,
          ...(reason === undefined ? {} : { reason }),
          via,
          named,
        })
      }
      throw err
    }
    const outcomes = await carriedOut(found, named, at, request.log)
    const failed = outcomes.find((settled) => settled.status === 'rejected')
    if (failed) throw failed.reason
    const done = outcomes.flatMap((settled) => (settled.status === 'fulfilled' ? [settled.value] : []))
    if (done.every(({ outcome }) => outcome === 'done'))
      throw gatehouseError('GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN', 'The logout token was already used.')
    // A delivery still at work may yet fail, its 503 perhaps lost to a
    // connection the IdP gave up on: a 400 now, which the IdP takes as
    // final, would leave the sessions running. Its Retry-After is no
    // shorter than the hold, so the resend finds the token done, or free.
    if (done.some(({ outcome }) => outcome === 'held'))
      throw gatehouseError('GATEHOUSE_ERR_LOGOUT_IN_PROGRESS')
    let ended = 0
    for (const { what, outcome } of done) {
      if (typeof outcome === 'number') {
        ended += outcome
        request.log.info({ idp: what.idp, ended: outcome }, 'back-channel logout')
      } else if (outcome === 'owed') {
        // Carried out by the gateway after an earlier delivery was
        // answered 503: this is the resend that 503 asked for, and the
        // logout is done. Nothing is ended again (a copy of the token must
        // not end the sessions its user has signed in to since), and from
        // now on a copy is a replay, as after a delivery answered 200.
        await replay.keep(what.seen, JTI_TTL_MS).catch(() => {})
        request.log.info({ idp: what.idp, ended: 0 }, 'back-channel logout carried out already')
      }
    }
    return { ended }
  }

  /**
   * Carries out a verified token at each client it is for (`as`, as
   * `carryOut`). One the store failed for is owed: the IdP gets its 503
   * with Retry-After, but oidc-provider and Keycloak send a logout token
   * once, whatever the answer, so the gateway carries it out itself once
   * the store answers, or the user's sessions would run on after the outage.
   */
  function carriedOut(
    { oidc, claims }: Awaited<ReturnType<typeof verified>>,
    named: readonly OidcClient[],
    at: number,
    log: FastifyBaseLogger,
    as: ReplayKept = 'done',
    stop?: AbortSignal,
  ) {
    return Promise.allSettled(
      clientsOf(oidc, named).map(async (client) => {
        const what: OwedLogout = {
          registration: client.registration,
          idp: client.name,
          claims,
          seen: replayKey(client.registration, claims),
          at,
        }
        try {
          return { what, outcome: await carryOut(what, as, stop) }
        } catch (err) {
          if (isGatehouseError(err) && err.code === 'GATEHOUSE_ERR_STORE_UNAVAILABLE')
            // Past the absolute timeout, every session the token could name has expired.
            owed.add(
              what.seen,
              {
                idp: what.idp,
                issuer: what.registration.issuer,
                what,
                budgetMs: config.session.absoluteTimeout,
              },
              log,
            )
          throw err
        }
      }),
    )
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
    let found: Awaited<ReturnType<typeof verified>>
    try {
      found = await verified(token.token, token.named, stop)
    } catch (err) {
      if (unreachable(err)) return 'unreachable'
      // The keys were read, but too recently to read again for its kid.
      if (isGatehouseError(err) && err.code === 'GATEHOUSE_ERR_IDP_UNAVAILABLE') return 'later'
      refused(token.log, err, token.named)
      return 'settled'
    }
    const outcomes = await carriedOut(found, token.named, token.at, token.log, 'owed', stop)
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

  /**
   * Ends the sessions a verified token names, once per token: how many it
   * ended, or what another delivery of the token left (`done`, `owed`,
   * `held`). Kept `as` owed when its delivery was answered 503. `stop`
   * (the shutdown's last pass running out) ends the wait on each store
   * call, and no call starts after it: a store that holds its connection
   * open without answering (frozen, not down) otherwise held the try, and
   * its command, until the store's timeout, past the drain.
   */
  async function carryOut(
    what: OwedLogout,
    as: ReplayKept = 'done',
    stop?: AbortSignal,
  ): Promise<LogoutAttempt> {
    const { registration, claims, seen } = what
    const claim = await untilStopped(stop, () => replay.claim(seen, JTI_HOLD_MS))
    if (claim !== 'claimed') return claim
    try {
      // §2.7: with a sid, end that IdP session's sessions; with only a sub, all of the user's.
      // The token is for a client (its `aud`), not for one of our entries:
      // every entry with this issuer and client id, in any frontend, signed
      // its sessions in at that client, so all of theirs end, and no other's.
      // The verifier refused a token naming neither (§2.4).
      const by = lookedUpBy(claims)!
      // Before the sessions are listed: a sign-in of this IdP session whose
      // record is not written yet ends once it is (Sessions.create).
      if ('sid' in by)
        await untilStopped(stop, () =>
          sessions.store.noteSidLoggedOut(registration, by.sid, LOGGED_OUT_TTL_MS),
        )
      // Naming only the user, it notes when it came (`at`: a logout owed
      // since a store outage keeps the time it came), and a sign-in of the
      // user that started before then ends once its record is written,
      // unless its ID token says the user authenticated after the token's
      // iat (Sessions.create). Rounded up: RFC 7519 §2 lets a NumericDate
      // have a fraction, which must not make a sign-in look fresher.
      else
        await untilStopped(stop, () =>
          sessions.store.noteSubLoggedOut(
            registration,
            by.sub,
            { at: what.at, iat: Math.ceil(claims.iat) },
            LOGGED_OUT_TTL_MS,
          ),
        )
      const ids = await untilStopped(stop, () =>
        sessionsOfClient(sessions.store, providers, registration, what.idp, by),
      )
      await untilStopped(stop, () => sessions.endAll(ids))
      await untilStopped(stop, () => replay.keep(seen, JTI_TTL_MS, as))
      return ids.length
    } catch (err) {
      // Not carried out (the store failing, maybe after ending some), or
      // not remembered as done: the 503 asks the IdP to send the token
      // again, and the repeat must not be refused as a replay, or the
      // sessions not yet ended run on. A store that cannot forget lets the
      // hold lapse (JTI_HOLD_MS), as it does once the drain has ended: no
      // call is started then, to be left pending as the stores close.
      if (!stop?.aborted) await replay.forget(seen).catch(() => {})
      throw err
    }
  }

  // §2.5: the OP POSTs an application/x-www-form-urlencoded form, and this
  // is the one body read here (16 KiB at most). Fastify's JSON parser took
  // `{"logout_token": …}` too, which no OP sends: any other media type is
  // refused before its body is read. With §2.8's 400 invalid_request, not
  // HTTP's 415: §2.8 answers every logout request that is not valid so, a
  // 400 is what an OP reads as "failed, do not resend", and one status for
  // every refusal is one thing for an operator to look up. In a scope of
  // their own, so no other route loses a parser.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: 16 * 1024 },
      (_request, body, done) => done(null, new URLSearchParams(body as string)),
    )
    // The sender's media type is not repeated: the answer and the warning
    // are for anyone who can POST.
    scope.addContentTypeParser('*', (request, _payload, done) =>
      done(
        refused(
          request.log,
          gatehouseError(
            'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN',
            'The logout request is not valid: Back-Channel Logout 1.0 §2.5 sends the logout_token in an application/x-www-form-urlencoded form.',
          ),
        ),
      ),
    )

    scope.post(
      `${base}/backchannel-logout`,
      { config: { renders: 'json' } },
      async (request: FastifyRequest<LogoutRequest>, reply) =>
        reply.code(200).send(await end(request, (token) => claimedBy(token, providers))),
    )

    scope.post(
      `${base}/backchannel-logout/:idp`,
      { config: { renders: 'json' } },
      async (request: FastifyRequest<LogoutRequest & { Params: { idp: string } }>, reply) => {
        const oidc = providers.get(request.params.idp)
        if (!oidc) throw gatehouseError('GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN', 'No such identity provider.')
        return reply.code(200).send(await end(request, () => [oidc], oidc.name))
      },
    )
  })
}

/**
 * `call`, unless `stop` has aborted, waited for until it does: then the
 * store's 503, its reason the drain, for what was not carried out is owed
 * (`carriedOut`, OwedLogouts). The command sent stays on the connection,
 * which the stores' close, bounded by the drain too, ends (server/lasting.ts).
 */
function untilStopped<T>(stop: AbortSignal | undefined, call: () => Promise<T>): Promise<T> {
  if (stop === undefined) return call()
  const cut = () =>
    Object.assign(new StoreUnavailableError(), {
      reason: "the shutdown's drain ended before the store answered",
    })
  if (stop.aborted) return Promise.reject(cut())
  return new Promise<T>((resolve, reject) => {
    const end = () => reject(cut())
    stop.addEventListener('abort', end, { once: true })
    call()
      .then(resolve, reject)
      .finally(() => stop.removeEventListener('abort', end))
  })
}

/**
 * The issuer's keys could not be fetched (its JWKS unreachable, too slow,
 * not a 200; or the provider not discovered yet): every token of the
 * issuer fails alike until they can. Not the wait for a `kid` missing
 * from a JWKS fetched too recently to fetch again, which has its own
 * `Retry-After` (logout-token.ts): the keys were read.
 */
function unreachable(err: unknown): boolean {
  return isGatehouseError(err) && err.code === 'GATEHOUSE_ERR_IDP_UNAVAILABLE' && err.retryAfter === undefined
}

/**
 * The token's `kid` is missing from a JWKS fetched too recently to fetch
 * again (logout-token.ts): a key the IdP rotated in just after the gateway
 * read its keys for another token. Its `Retry-After` is jose's cooldown.
 */
function awaitingKey(err: unknown): boolean {
  return isGatehouseError(err) && err.code === 'GATEHOUSE_ERR_IDP_UNAVAILABLE' && err.retryAfter !== undefined
}

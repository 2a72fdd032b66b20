import type { FastifyInstance, FastifyRequest } from 'fastify'
import { gatehouseError } from '../errors.js'
import type { OidcClient } from '../oidc/client.js'
import { unfetchedReason } from '../oidc/logout-token.js'
import type { IdentityProviders } from '../oidc/providers.js'
import type { ReplayCache } from '../tokens/types.js'
import type { Held } from './held-logout-attempts.js'
import { JTI_TTL_MS, type LogoutCarryOut } from './logout-carry-out.js'
import { awaitingKey, type LogoutTokenChecks, unreachable, type Verified } from './logout-token-checks.js'
import { claimedBy } from './logout-token-clients.js'

/** A back-channel logout request: the form §2.5 posts, or no body at all. */
interface LogoutRequest {
  Body: URLSearchParams | undefined
}

export interface LogoutRequestDeps {
  /** `auth.basePath`. */
  readonly base: string
  readonly providers: IdentityProviders
  readonly replay: ReplayCache
  readonly checks: LogoutTokenChecks
  readonly carrier: LogoutCarryOut
  /** Holds a token whose issuer's keys cannot be read yet. */
  readonly hold: (token: Held) => void
  readonly now: () => number
}

/**
 * Reads a back-channel logout request at `{base}/backchannel-logout` (and
 * `…/<provider name>`), and answers it: 200 once the sessions its token
 * names are ended, 400 for a token refused or used, 503 while what it asks
 * cannot be done yet (§2.8).
 */
export async function logoutRequestRoutes(app: FastifyInstance, deps: LogoutRequestDeps) {
  const { base, providers, replay, checks, carrier, hold } = deps

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
      throw checks.refused(request.log, err, named)
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
    let found: Verified
    try {
      found = await checks.verified(token, named)
    } catch (err) {
      // The IdP gets its 503 with Retry-After, but oidc-provider and
      // Keycloak send a logout token once, whatever the answer: held as it
      // came, the token is verified once the keys can be read (or read
      // again, for a kid rotated in just after they were), and only then
      // carried out.
      if ((unreachable(err) || awaitingKey(err)) && named[0]) {
        const reason = unfetchedReason(err)
        hold({
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
    const outcomes = await carrier.carriedOut(found, named, at, request.log)
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
        checks.refused(
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
        // Logged as any refused token is: an IdP whose registered URL names
        // a provider this config lacks (renamed, removed) logs out nobody.
        // Not the name: anyone may post here, so it is theirs to choose.
        if (!oidc)
          throw checks.refused(
            request.log,
            gatehouseError('GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN', 'No such identity provider.'),
          )
        return reply.code(200).send(await end(request, () => [oidc], oidc.name))
      },
    )
  })
}

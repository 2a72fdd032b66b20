/**
 * Token exchange at the dev IdP (RFC 8693), and Entra ID's on-behalf-of
 * flow (RFC 7523's jwt-bearer grant with `requested_token_use=on_behalf_of`),
 * as oidc-provider grants of its own (`registerGrantType`). The subject
 * token is checked against the provider's own store (an access token) or
 * keys (an ID token), as strictly as a production IdP would: issued to
 * the same client, alive, and, when DPoP-bound, proved with its key. The
 * token issued has the requested audience as `aud`, and an `act` claim
 * (RFC 8693 §4.1) when an actor token came with the request.
 */
import Provider, { type errors as ErrorTypes, errors, type TokenEndpointGrantContext } from 'oidc-provider'

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token'

export interface DevTokenExchange {
  /**
   * The services a token may be exchanged for, by audience (RFC 8693
   * `audience` or `resource`; for jwt-bearer, the part of the scope before
   * its last `/`, as Entra ID reads `api://ledger/.default`), each with the
   * scopes it accepts. Any other audience is `invalid_target`.
   */
  readonly audiences: Readonly<Record<string, { readonly scopes?: readonly string[] }>>
  /**
   * The audiences each client may exchange for; a client not named may
   * exchange for every one. Any other is `unauthorized_client`.
   */
  readonly clients?: Readonly<Record<string, readonly string[]>>
}

/** What the exchanges saw, by audience: tests count "one exchange per expiry per route". */
export interface ExchangeStats {
  tokenExchanges: number
  onBehalfOf: number
  byAudience: Record<string, number>
}

interface ExchangeParams {
  subject_token?: string
  subject_token_type?: string
  actor_token?: string
  actor_token_type?: string
  audience?: string
  requested_token_type?: string
  assertion?: string
  requested_token_use?: string
}

type Context = TokenEndpointGrantContext<ExchangeParams>
interface DpopProof {
  readonly thumbprint: string
  readonly jti: string
}
type ValidateDpop = (provider: Provider, ctx: Context) => Promise<DpopProof | undefined>
type CheckReplay = (provider: Provider, ctx: Context, proof: DpopProof, clientId: string) => Promise<void>

/**
 * oidc-provider's own DPoP proof check (signature, `htm`/`htu`, nonce,
 * replay): a grant of one's own gets no helpers, and a second
 * implementation here would be weaker than the one the built-in grants use.
 */
const dpop = (await import('oidc-provider/lib/helpers/validate_dpop.js' as string)) as {
  default: ValidateDpop
  checkDpopReplay: CheckReplay
}

/** The act claim each issued token carries, until oidc-provider asks for its extra claims. */
const actors = new WeakMap<object, Record<string, unknown>>()

/** `extraTokenClaims` for the provider's configuration: the `act` claim of an exchanged token. */
export function exchangeClaims(_ctx: unknown, token: object): Record<string, unknown> | undefined {
  const act = actors.get(token)
  return act ? { act } : undefined
}

/** The grant types a client needs registered to use these grants. */
export const EXCHANGE_GRANT_TYPES = [TOKEN_EXCHANGE, JWT_BEARER]

/** Registers both grants on `provider`, counting into `stats`. */
export function registerExchangeGrants(
  provider: Provider,
  options: DevTokenExchange,
  stats: ExchangeStats,
): void {
  provider.registerGrantType<ExchangeParams>(
    TOKEN_EXCHANGE,
    async (ctx) => {
      const p = ctx.oidc.params
      if (!p.subject_token || !p.subject_token_type)
        throw new errors.InvalidRequest('subject_token and subject_token_type are required')
      if (p.requested_token_type !== undefined && p.requested_token_type !== ACCESS_TOKEN_TYPE)
        throw new errors.InvalidRequest('only access tokens are issued')
      const target = single(p.audience, p.resource)
      await issue(ctx, options, stats, {
        subject: p.subject_token,
        subjectType: p.subject_token_type,
        target,
        actor: p.actor_token,
      })
    },
    [
      'subject_token',
      'subject_token_type',
      'actor_token',
      'actor_token_type',
      'audience',
      'resource',
      'scope',
      'requested_token_type',
    ],
  )
  provider.registerGrantType<ExchangeParams>(
    JWT_BEARER,
    async (ctx) => {
      const p = ctx.oidc.params
      if (!p.assertion) throw new errors.InvalidRequest('assertion is required')
      // Microsoft identity platform: the on-behalf-of flow is the only use of this grant here.
      if (p.requested_token_use !== 'on_behalf_of')
        throw new errors.InvalidRequest('requested_token_use must be on_behalf_of')
      const scope = p.scope?.split(' ')[0] ?? ''
      const target = scope.includes('/') ? scope.slice(0, scope.lastIndexOf('/')) : undefined
      await issue(ctx, options, stats, { subject: p.assertion, subjectType: ACCESS_TOKEN_TYPE, target })
    },
    ['assertion', 'requested_token_use', 'scope', 'resource'],
  )
}

/** One audience: RFC 8693 allows several, and this IdP, like most, issues for one. */
function single(audience: string | undefined, resource: unknown): string | undefined {
  if (Array.isArray(resource)) throw new errors.InvalidTarget('one resource at a time')
  if (audience !== undefined && resource !== undefined && audience !== resource)
    throw new errors.InvalidTarget('audience and resource name different services')
  return audience ?? (resource as string | undefined)
}

interface Ask {
  readonly subject: string
  readonly subjectType: string
  readonly target: string | undefined
  readonly actor?: string | undefined
}

async function issue(ctx: Context, options: DevTokenExchange, stats: ExchangeStats, ask: Ask) {
  const { provider, client } = ctx.oidc
  const proof = await dpop.default(provider, ctx)
  const subject = await validSubject(ctx, ask, proof)
  const target = ask.target
  const server = target === undefined ? undefined : options.audiences[target]
  if (target === undefined || server === undefined) throw new errors.InvalidTarget('unknown audience')
  const allowed = options.clients?.[client.clientId]
  if (allowed !== undefined && !allowed.includes(target))
    throw new errors.UnauthorizedClient('this client may not exchange tokens for this audience')
  const accepted = server.scopes ?? []
  const requested = (ctx.oidc.params.scope ?? '').split(' ').filter((s) => s !== '')
  // Entra ID's `.default`: every scope the API has.
  const named = requested.map((s) => (s.includes('/') ? s.slice(s.lastIndexOf('/') + 1) : s))
  const scopes = named.includes('.default') || named.length === 0 ? accepted : named
  const refused = scopes.filter((s) => !accepted.includes(s))
  if (refused.length > 0) throw new errors.InvalidScope(`scope not accepted by ${target}`, refused.join(' '))
  const actor = ask.actor === undefined ? undefined : await validActor(provider, ask.actor)

  const token = new provider.AccessToken({
    accountId: subject.accountId,
    client,
    gty: ask.subjectType === ID_TOKEN_TYPE ? 'token_exchange_id_token' : 'token_exchange',
    scope: scopes.join(' ') || undefined,
    ...(subject.grantId ? { grantId: subject.grantId } : {}),
  } as ConstructorParameters<Provider['AccessToken']>[0])
  token.setAudience(target)
  if (proof) {
    await dpop.checkDpopReplay(provider, ctx, proof, client.clientId)
    token.setThumbprint('jkt', proof.thumbprint)
  }
  if (actor) actors.set(token, { sub: actor })
  const value = await token.save()
  stats.tokenExchanges++
  if (ctx.oidc.params.grant_type === JWT_BEARER) stats.onBehalfOf++
  stats.byAudience[target] = (stats.byAudience[target] ?? 0) + 1
  ctx.body = {
    access_token: value,
    ...(ctx.oidc.params.grant_type === TOKEN_EXCHANGE ? { issued_token_type: ACCESS_TOKEN_TYPE } : {}),
    token_type: token.tokenType,
    expires_in: token.expiration,
    ...(token.scope ? { scope: token.scope } : {}),
  }
}

interface Subject {
  readonly accountId: string
  readonly grantId?: string | undefined
}

/** The subject token, as the provider's own store or keys know it; `invalid_grant` when they do not. */
async function validSubject(ctx: Context, ask: Ask, proof: DpopProof | undefined): Promise<Subject> {
  const { provider, client } = ctx.oidc
  const refused = (why: string): ErrorTypes.InvalidGrant => new errors.InvalidGrant(`subject token ${why}`)
  if (ask.subjectType === ID_TOKEN_TYPE) {
    const { payload } = await provider.IdToken.validate(ask.subject, client).catch(() => {
      throw refused('is not an ID token this provider issued to this client')
    })
    // IdToken.validate ignores `exp` (it serves id_token_hint); an exchange must not.
    if (typeof payload.exp !== 'number' || payload.exp * 1000 <= Date.now()) throw refused('has expired')
    return { accountId: String(payload.sub) }
  }
  if (ask.subjectType !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest('unsupported subject_token_type')
  const found = await provider.AccessToken.find(ask.subject)
  if (!found || found.isExpired) throw refused('is not active')
  if (found.clientId !== client.clientId) throw refused('was issued to another client')
  if (!found.accountId) throw refused('has no subject')
  // RFC 9449 §6: a DPoP-bound token is presented with a proof of its key.
  if (found.jkt !== undefined && found.jkt !== proof?.thumbprint)
    throw refused('is DPoP-bound and the proof is not of its key')
  return { accountId: found.accountId, grantId: found.grantId }
}

/** RFC 8693 §4.1: who acts; an access token or a client-credentials token of this provider's. */
async function validActor(provider: Provider, token: string): Promise<string> {
  const found = (await provider.AccessToken.find(token)) ?? (await provider.ClientCredentials.find(token))
  if (!found || found.isExpired) throw new errors.InvalidGrant('actor token is not active')
  return 'accountId' in found && found.accountId ? found.accountId : found.clientId!
}

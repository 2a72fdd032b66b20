import type { IdentityProviders } from '../oidc/providers.js'
import type { SessionOfUser, SessionStore } from '../session/types.js'
import type { ClientRegistration } from '../types.js'

/** What the sessions are looked up by: a user, or an IdP session (OIDC Back-Channel Logout §2.4). */
export type LookedUpBy = { readonly sub: string } | { readonly sid: string }

/**
 * What an IdP's `sid` and `sub` look sessions up by: the IdP session when
 * named (§2.7: that session's, not all of the user's), else the user;
 * `undefined` when neither is.
 */
export function lookedUpBy(named: {
  readonly sid?: string | undefined
  readonly sub?: string | undefined
}): LookedUpBy | undefined {
  if (named.sid) return { sid: named.sid }
  return named.sub ? { sub: named.sub } : undefined
}

/**
 * Ids of the live sessions of a user or an IdP session whose tokens
 * `registration` (an issuer and client id) issued, whichever provider
 * entry signed them in: each name's own indexes, since a `sub` or `sid`
 * is unique only per issuer, of every name that has or had that issuer
 * and client id (`IdentityProviders.namesOf`), and of `home` besides.
 * Of each, only the sessions that registration issued: a reload may have
 * given a name another client, whose users are others.
 */
export async function sessionsOfClient(
  store: SessionStore,
  providers: IdentityProviders,
  registration: ClientRegistration | undefined,
  home: string,
  by: LookedUpBy,
): Promise<string[]> {
  const names = new Set([home, ...(registration ? providers.namesOf(registration) : [])])
  const lists = await Promise.all(
    [...names].map((idp) => {
      const issuedBy = (recorded: ClientRegistration | undefined) =>
        providers.issuedAs(idp, recorded, registration)
      return 'sid' in by ? store.idsBySid(by.sid, idp, issuedBy) : store.idsBySub(by.sub, idp, issuedBy)
    }),
  )
  return [...new Set(lists.flat())]
}

/** A session of a user, under the provider name whose index listed it. */
export type ListedSession = SessionOfUser & { readonly idp: string }

/**
 * The live sessions of user `sub` whose tokens `registration` issued, of
 * every frontend, as `sessionsOfClient` finds them, each with what its
 * store knows of it without its key (`SessionStore.sessionsOfUser`): when
 * it was made, and when its refresh token expires.
 */
export async function sessionsOfUserAtClient(
  store: SessionStore,
  providers: IdentityProviders,
  registration: ClientRegistration | undefined,
  home: string,
  sub: string,
): Promise<ListedSession[]> {
  const names = new Set([home, ...(registration ? providers.namesOf(registration) : [])])
  const lists = await Promise.all(
    [...names].map(async (idp) => {
      const listed = await store.sessionsOfUser(sub, idp, (recorded) =>
        providers.issuedAs(idp, recorded, registration),
      )
      return listed.map((session) => ({ ...session, idp }))
    }),
  )
  return [...new Map(lists.flat().map((session) => [session.id, session])).values()]
}

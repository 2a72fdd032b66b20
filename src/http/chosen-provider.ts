import { gatehouseError } from '../errors.js'
import type { OidcClient } from '../oidc/client.js'
import type { IdentityProviders } from '../oidc/providers.js'

/**
 * The provider `/auth/login?idp=<name>` asks for, or the first when the
 * query names none. A name that is not configured, given twice or empty,
 * throws `GATEHOUSE_ERR_UNKNOWN_IDENTITY_PROVIDER` before anything goes to
 * any provider: a sign-in link must not silently land at another IdP.
 */
export function chosenProvider(idp: unknown, providers: IdentityProviders): OidcClient {
  if (idp === undefined) return providers.default
  const client = typeof idp === 'string' ? providers.get(idp) : undefined
  if (client) return client
  throw gatehouseError(
    'GATEHOUSE_ERR_UNKNOWN_IDENTITY_PROVIDER',
    `The sign-in link names an identity provider this gateway does not have. Known: ${providers.all.map((c) => c.name).join(', ')}.`,
  )
}

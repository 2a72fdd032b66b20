import type { Static } from '@sinclair/typebox'
import { type OidcSchema, type RawConfig, SHORTHAND_PROVIDER } from './schema.js'

/** The options of one provider as written, without its name. */
export type RawOidc = Static<typeof OidcSchema>

/** One provider as written: where (`oidc` or `identityProviders[i]`), its name, and its options. */
export interface RawProvider {
  readonly path: readonly (string | number)[]
  readonly name: string
  readonly oidc: RawOidc
}

/**
 * The providers a config names, in order: the `oidc:` shorthand as one
 * provider named `default`, else each of `identityProviders`. Every check
 * and resolution of provider options goes through this, so the shorthand
 * is checked exactly as a listed provider is.
 */
export function rawProviders(config: Pick<RawConfig, 'oidc' | 'identityProviders'>): RawProvider[] {
  if (config.identityProviders !== undefined) {
    return config.identityProviders.map(({ name, ...oidc }, i) => ({
      path: ['identityProviders', i],
      name,
      oidc,
    }))
  }
  return config.oidc === undefined ? [] : [{ path: ['oidc'], name: SHORTHAND_PROVIDER, oidc: config.oidc }]
}

/** How a finding names an option of the provider at `path`: `oidc.dpop`, `identityProviders[1].dpop`. */
export function optionName(path: readonly (string | number)[], option: string): string {
  let out = ''
  for (const part of [...path, option])
    out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`
  return out
}

/**
 * The provider a `token: client` route's token comes from: the first it
 * lists, else the first its frontend (`frontendListed`) signs in with,
 * else the first of all (`RouteConfig.clientIdentityProvider`);
 * `undefined` when the name is no provider's, which is reported apart.
 */
export function clientTokenProvider(
  providers: readonly RawProvider[],
  listed: readonly string[] | undefined,
  frontendListed: readonly string[] | undefined,
): RawProvider | undefined {
  const name = listed?.[0] ?? frontendListed?.[0]
  return name === undefined ? providers[0] : providers.find((p) => p.name === name)
}

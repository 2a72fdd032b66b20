import type { GatehouseConfig } from './types.js'

/**
 * The redirect URIs the gateway sends each identity provider, by provider
 * name: what an operator registers there. One per frontend the provider
 * signs in at, each under that frontend's `publicUrl` and `auth.basePath`,
 * ending in the provider's `callbackPath` (`/callback`, or
 * `/callback/<name>` for each of `identityProviders`). `check` prints them
 * and the start-up line carries them, so a deployment that changes from
 * `oidc:` to `identityProviders:` learns the new address before a login
 * meets "invalid redirect_uri".
 */
export function redirectUris(config: GatehouseConfig): Record<string, readonly string[]> {
  const uris: Record<string, readonly string[]> = {}
  for (const provider of config.identityProviders) {
    uris[provider.name] = config.frontends
      .filter((f) => f.identityProviders === undefined || f.identityProviders.includes(provider.name))
      .map((f) => `${f.publicUrl}${f.auth.basePath}${provider.callbackPath}`)
  }
  return uris
}

import type * as oauth from 'oauth4webapi'
import { gatehouseError } from '../errors.js'

/** Longer than any real prompt, login_hint, ui_locales or acr_values. */
const MAX_LENGTH = 512

/** OIDC Core §3.1.2.1: `max_age` is a number of seconds; the ten digits `maxAgeOf` reads. */
const MAX_AGE = /^\d{1,10}$/

/**
 * The `/auth/login` query parameters the deployment lets an SPA pass to the
 * IdP (`auth.loginParams`), e.g. `prompt=create` for sign-up or
 * `prompt=none` for a silent check. `prompt` values must each be ones the
 * IdP advertises in `prompt_values_supported` (OpenID Connect Prompt Create
 * §4.1) when it advertises any. Throws `GATEHOUSE_ERR_INVALID_LOGIN_PARAM`.
 */
export function loginParams(
  query: Readonly<Record<string, unknown>>,
  allowed: readonly string[],
  metadata: Readonly<oauth.AuthorizationServer> | undefined,
): Record<string, string> {
  const params: Record<string, string> = {}
  for (const name of allowed) {
    const value = query[name]
    if (value === undefined) continue
    if (typeof value !== 'string' || value.length === 0 || value.length > MAX_LENGTH) {
      throw gatehouseError(
        'GATEHOUSE_ERR_INVALID_LOGIN_PARAM',
        `${name} must be given once, with 1 to ${MAX_LENGTH} characters.`,
      )
    }
    // A max_age the callback cannot read would go to the IdP unchecked
    // there, and an IdP that ignores one it cannot parse either would sign
    // in an authentication of any age.
    if (name === 'max_age' && !MAX_AGE.test(value)) {
      throw gatehouseError(
        'GATEHOUSE_ERR_INVALID_LOGIN_PARAM',
        'max_age must be a whole number of seconds (OpenID Connect Core §3.1.2.1).',
      )
    }
    params[name] = value
  }
  const supported = metadata?.prompt_values_supported
  if (params.prompt !== undefined && Array.isArray(supported)) {
    for (const prompt of params.prompt.split(' ')) {
      if (!supported.includes(prompt)) {
        throw gatehouseError(
          'GATEHOUSE_ERR_INVALID_LOGIN_PARAM',
          `prompt=${prompt} is not supported by the identity provider (it supports ${supported.join(', ')}).`,
        )
      }
    }
  }
  return params
}

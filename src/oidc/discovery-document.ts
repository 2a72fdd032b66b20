import * as oauth from 'oauth4webapi'
import type { IdentityProviderConfig } from '../config/types.js'
import { advertisedFlags } from './advertised-flags.js'
import { advertisedLists } from './advertised-lists.js'
import { advertisedEndpoints, checkRequiredEndpoints } from './discovered-endpoints.js'
import type { IdpHttp } from './idp-http.js'
import { unparsedIssuer } from './issuer-mismatch.js'

/**
 * Fetches `issuer`'s discovery document and checks it (client.ts
 * `discover`): the document, with what it advertised in the wrong shape
 * left out, and a hint for each such member. Throws what oauth4webapi and
 * the checks throw, for the client to translate.
 */
export async function readDiscoveryDocument(
  issuer: URL,
  http: IdpHttp,
  oidc: IdentityProviderConfig,
): Promise<{ as: Readonly<oauth.AuthorizationServer>; hints: string[] }> {
  const response = await oauth.discoveryRequest(issuer, {
    ...http.options(),
    algorithm: 'oidc',
  })
  const processed = await oauth
    .processDiscoveryResponse(issuer, response)
    .catch((err: unknown) => Promise.reject(unparsedIssuer(err, oidc)))
  checkRequiredEndpoints(processed, issuer)
  // An optional member of the wrong shape is read as not advertised, as
  // check --online reads it: every reader may then take it for what
  // the specification says it is (a list, an endpoint it may call, a boolean).
  const endpoints = advertisedEndpoints(processed, issuer)
  const lists = advertisedLists(endpoints.as)
  const flags = advertisedFlags(lists.as)
  return { as: flags.as, hints: [...endpoints.hints, ...lists.hints, ...flags.hints] }
}

import { createHash } from 'node:crypto'

/**
 * What the login cookie remembers of the resources an authorization
 * request named (RFC 8707 §2): a digest, not the list. The cookie already
 * carries a `returnTo` of up to 2 KB and perhaps a DPoP key, and a list of
 * resource URIs could push it past the browser's 4 KB, which drops it
 * silently. The set is sorted, so the order of the routes does not count.
 * 128 bits: the cookie is sealed, so this only tells two configurations
 * apart, and no one can choose what it is compared with.
 */
export function resourcesDigest(resources: readonly string[]): string {
  const set = JSON.stringify([...new Set(resources)].sort())
  return createHash('sha256').update(set).digest().subarray(0, 16).toString('base64url')
}

/**
 * The resources a login asked for, as the callback's client knows them:
 * its own, when the digest the login recorded is theirs. Otherwise a reload
 * changed them while the user was at the IdP (or the login began before
 * logins recorded them), and what the request named is not known:
 * `undefined`, which grants the session no resource it has not been issued
 * a token for (`withinGrant`).
 */
export function askedResources(
  recorded: string | undefined,
  resources: readonly string[],
): string[] | undefined {
  return recorded !== undefined && recorded === resourcesDigest(resources) ? [...resources] : undefined
}

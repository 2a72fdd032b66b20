import { type RouteList, routeLists } from './frontend-rules.js'
import { LOOPBACK_HOST as LOOPBACK } from './loopback.js'
import { clientTokenProvider, optionName, type RawProvider, rawProviders } from './providers.js'
import type { RawConfig } from './schema.js'
import type { TlsMaterial } from './types.js'

interface Finding {
  readonly path: (string | number)[]
  readonly message: string
}

/** FAPI 2.0 Security Profile §5.4.1: the only JWS algorithms allowed. */
export const FAPI2_ALGORITHMS: readonly string[] = ['PS256', 'ES256', 'EdDSA']

/** FAPI 2.0 §5.3.2.1-2: client authentication by mutual TLS or private_key_jwt only. */
const FAPI2_CLIENT_AUTH: ReadonlySet<string> = new Set([
  'private_key_jwt',
  'tls_client_auth',
  'self_signed_tls_client_auth',
])

/**
 * What `oidc.profile: fapi2` requires of the configuration, beyond what
 * it sets itself (PAR required; the ID-token algorithm at discovery). Each
 * finding cites the FAPI 2.0 Security Profile (Final) section it enforces;
 * docs/fapi2.md lists them all.
 */
export function checkFapi2(config: FapiConfig, provider: RawProvider): Finding[] {
  const { oidc, path: at } = provider
  if (oidc.profile !== 'fapi2') return []
  const findings: Finding[] = []
  const add = (path: (string | number)[], message: string) => findings.push({ path, message })

  // §5.3.2.2 (clients shall use PAR, RFC 9126).
  if (oidc.par === 'off')
    add([...at, 'par'], 'profile fapi2 requires pushed authorization requests; remove par: off')
  // §5.3.2.1 point 2; a shared secret is not allowed.
  if (!FAPI2_CLIENT_AUTH.has(oidc.clientAuth)) {
    add(
      [...at, 'clientAuth'],
      `profile fapi2 allows private_key_jwt, tls_client_auth or self_signed_tls_client_auth only (got ${oidc.clientAuth})`,
    )
  }
  if (oidc.clientSecret !== undefined)
    add([...at, 'clientSecret'], 'profile fapi2 allows no client secret; remove it')
  // §5.3.2.1 point 1: sender-constrained access tokens, by DPoP (RFC 9449) or mTLS (RFC 8705 §3).
  if (!oidc.dpop && oidc.tls?.cert === undefined) {
    add(
      [...at, 'profile'],
      `profile fapi2 requires sender-constrained access tokens: set ${optionName(at, 'dpop')}: true, or ${optionName(at, 'tls')} with a client certificate the IdP binds tokens to (RFC 8705 §3)`,
    )
  }
  // §5.4.1: PS256, ES256 or EdDSA for every signature the client makes.
  if (oidc.dpop && !['PS256', 'ES256', 'Ed25519', 'EdDSA'].includes(oidc.dpopAlgorithm)) {
    add(
      [...at, 'dpopAlgorithm'],
      `profile fapi2 allows PS256, ES256 or Ed25519 (EdDSA) only (got ${oidc.dpopAlgorithm})`,
    )
  }
  // §5.2.1: TLS everywhere a token travels; plain http for loopback only, as for the issuer.
  for (const list of routeLists(config)) {
    list.routes.forEach((route, i) => {
      if (!carriesTokenOf(config, list, route, provider)) return
      // §5.3.2.1 point 1 again, per route: without a proof, a DPoP-bound
      // token is sent as a bearer one, and a route's own token is unbound.
      if (route.dpop === false && oidc.dpop && oidc.tls?.cert === undefined) {
        add(
          [...list.at, i, 'dpop'],
          'profile fapi2 requires sender-constrained access tokens: with dpop: false this route is sent its token without a proof; remove it, or bind the tokens by mutual TLS (oidc.tls)',
        )
      }
      const url = URL.canParse(route.upstream) ? new URL(route.upstream) : undefined
      if (url?.protocol === 'http:' && !LOOPBACK.test(url.hostname)) {
        add(
          [...list.at, i, 'upstream'],
          'profile fapi2 sends tokens over TLS only: use https (plain http only for loopback hosts)',
        )
      }
    })
  }
  return findings
}

/**
 * §5.3.2.1 point 1 when mutual TLS alone binds the tokens (RFC 8705 §3): a
 * certificate-bound token is good only with the certificate it is bound
 * to, so every route that is sent one must present that certificate to its
 * upstream, compared by fingerprint once the files are read. Plain http to
 * loopback, the profile's allowance for testing on one machine, is left
 * to the rule on upstreams; with DPoP as well, only a `dpop: false` route
 * needs it.
 */
export function checkFapi2Certificates(
  config: FapiConfig,
  provider: RawProvider,
  materialAt: (path: (string | number)[]) => TlsMaterial | undefined,
): Finding[] {
  const { oidc, path: at } = provider
  if (oidc.profile !== 'fapi2') return []
  const bound = materialAt([...at, 'tls'])?.certificate
  if (bound === undefined) return []
  const findings: Finding[] = []
  for (const list of routeLists(config)) {
    list.routes.forEach((route, i) => {
      if (!carriesTokenOf(config, list, route, provider)) return
      // With DPoP, a route's proof binds its token; `dpop: false` goes without one.
      if (oidc.dpop && route.dpop !== false) return
      if (URL.canParse(route.upstream) && new URL(route.upstream).protocol === 'http:') return
      const presented = materialAt([...list.at, i, 'tls'])?.certificate
      if (presented?.fingerprint256 === bound.fingerprint256) return
      findings.push({
        path: [...list.at, i, 'tls', 'cert'],
        message: `profile fapi2 with mTLS-bound tokens (RFC 8705 §3): this route is sent a token bound to the certificate of ${optionName(at, 'tls')}.cert, which only that certificate can use; give the route tls: { cert, key } with the same certificate`,
      })
    })
  }
  return findings
}

type FapiConfig = Pick<RawConfig, 'routes' | 'frontends' | 'auth' | 'oidc' | 'identityProviders'>

/**
 * Whether `route` is ever sent a token of `provider`: a `client` route
 * the gateway's own, from the route's first provider, else its frontend's
 * first, else the first of all (`clientIdentityProvider`); any other the
 * token of a session, of the providers the route serves and its frontend
 * signs in with.
 */
function carriesTokenOf(
  config: FapiConfig,
  list: RouteList,
  route: RawConfig['routes'][number],
  provider: RawProvider,
): boolean {
  if (route.token === 'none') return false
  const frontend = list.at[0] === 'frontends' ? config.frontends?.[list.at[1] as number] : undefined
  if (route.token === 'client')
    return (
      clientTokenProvider(rawProviders(config), route.identityProviders, frontend?.identityProviders)
        ?.name === provider.name
    )
  if (route.identityProviders !== undefined && !route.identityProviders.includes(provider.name)) return false
  return frontend?.identityProviders === undefined || frontend.identityProviders.includes(provider.name)
}

/**
 * §5.4.1 for the `private_key_jwt` key: RSA signs PS256 (not RS256), and
 * must be at least 2048 bits (§5.4.1 point 2); P-256 signs ES256, Ed25519
 * EdDSA; P-384 and P-521 have no allowed algorithm.
 */
export function fapi2KeyAlgorithm(alg: string, rsaBits: number | undefined): string | { problem: string } {
  if (alg === 'RS256') {
    if ((rsaBits ?? 0) < 2048)
      return { problem: `profile fapi2 needs an RSA key of at least 2048 bits (got ${rsaBits})` }
    return 'PS256'
  }
  if (FAPI2_ALGORITHMS.includes(alg)) return alg
  return { problem: `profile fapi2 allows PS256, ES256 or EdDSA keys only; this key would sign ${alg}` }
}

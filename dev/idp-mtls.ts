/**
 * Mutual TLS for the dev IdP (RFC 8705): oidc-provider's `features.mTLS`,
 * reading the client certificate from the header a TLS terminator in front
 * of it sets (test/helpers/mtls-front.ts), as production deployments behind
 * nginx or an ingress do. Trust that header only from that terminator.
 */
import { X509Certificate } from 'node:crypto'
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider'

/** The client certificate, URL-encoded PEM (nginx's `$ssl_client_escaped_cert`). */
export const CLIENT_CERT_HEADER = 'x-client-cert'
/** `SUCCESS`, `FAILED:<reason>` or `NONE` (nginx's `$ssl_client_verify`). */
export const CLIENT_VERIFY_HEADER = 'x-client-verify'

/** oidc-provider's default client authentication methods, and the two of RFC 8705 §2. */
export const MTLS_AUTH_METHODS: NonNullable<Configuration['clientAuthMethods']> = [
  'client_secret_basic',
  'client_secret_post',
  'private_key_jwt',
  'none',
  'tls_client_auth',
  'self_signed_tls_client_auth',
]

export interface DevMtls {
  /** RFC 8705 §3: bind access tokens to the certificate for clients registered so. Default true. */
  readonly certificateBoundAccessTokens?: boolean
}

/** How a client registers for mTLS at the dev IdP. */
export interface DevMtlsClient {
  /** RFC 8705 §2.1.2: the subject DN its PKI certificate must have, for `tls_client_auth`. */
  readonly tlsClientAuthSubjectDn?: string
  /** RFC 8705 §3.4. */
  readonly certificateBoundAccessTokens?: boolean
}

function certificateOf(ctx: KoaContextWithOIDC): string | undefined {
  const header = ctx.get(CLIENT_CERT_HEADER)
  return header ? decodeURIComponent(header) : undefined
}

export function mtlsFeature(options: DevMtls | undefined): NonNullable<Configuration['features']>['mTLS'] {
  if (!options) return { enabled: false }
  return {
    enabled: true,
    tlsClientAuth: true,
    selfSignedTlsClientAuth: true,
    certificateBoundAccessTokens: options.certificateBoundAccessTokens ?? true,
    getCertificate: (ctx) => certificateOf(ctx),
    certificateAuthorized: (ctx) => ctx.get(CLIENT_VERIFY_HEADER) === 'SUCCESS',
    certificateSubjectMatches(ctx, property, expected) {
      const pem = certificateOf(ctx)
      if (!pem || property !== 'tls_client_auth_subject_dn') return false
      // RFC 8705 §2.1.2 compares DNs; the dev IdP keeps to the one-line `CN=x` form.
      return new X509Certificate(pem).subject.replace(/\n/g, ',') === expected
    },
  }
}

export function mtlsClientMetadata(client: DevMtlsClient): Record<string, unknown> {
  return {
    ...(client.tlsClientAuthSubjectDn ? { tls_client_auth_subject_dn: client.tlsClientAuthSubjectDn } : {}),
    ...(client.certificateBoundAccessTokens ? { tls_client_certificate_bound_access_tokens: true } : {}),
  }
}

import { Type } from '@sinclair/typebox'

const strict = { additionalProperties: false } as const

/** One PEM item: a file (relative to the config file) or the PEM text itself, usually from the environment. */
const Pem = (what: string, env: string) =>
  Type.Union(
    [
      Type.Object({ file: Type.String({ minLength: 1 }) }, strict),
      Type.Object({ pem: Type.String({ minLength: 1 }) }, strict),
    ],
    {
      description: `${what}: { file: path } to a PEM file (relative to the config file), or { pem: \${${env}} }.`,
    },
  )

/**
 * `oidc.tls`: the client certificate for mutual TLS with the IdP (RFC 8705)
 * and the CA its TLS server certificate must chain to.
 */
export const OidcTlsSchema = Type.Object(
  {
    cert: Type.Optional(
      Pem(
        'Client certificate (leaf first, then any intermediates) presented to the IdP; needs key',
        'OIDC_TLS_CERT',
      ),
    ),
    key: Type.Optional(Pem('Private key of cert', 'OIDC_TLS_KEY')),
    ca: Type.Optional(
      Pem(
        "CA certificates the IdP's server certificate must chain to, instead of the system's",
        'OIDC_TLS_CA',
      ),
    ),
  },
  {
    ...strict,
    description:
      'Mutual TLS with the IdP (RFC 8705): the client certificate for clientAuth tls_client_auth or self_signed_tls_client_auth, and for certificate-bound access tokens with any clientAuth; its mtls_endpoint_aliases are used when advertised. An expired certificate, or one that does not match its key, fails at load.',
  },
)

/** `routes[].tls`: TLS to one upstream, for a private CA or an upstream that requires a client certificate. */
export const RouteTlsSchema = Type.Object(
  {
    ca: Type.Optional(
      Pem(
        "CA certificates the upstream's server certificate must chain to, instead of the system's",
        'UPSTREAM_CA',
      ),
    ),
    cert: Type.Optional(
      Pem('Client certificate presented to the upstream (leaf first); needs key', 'UPSTREAM_TLS_CERT'),
    ),
    key: Type.Optional(Pem('Private key of cert', 'UPSTREAM_TLS_KEY')),
    servername: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "Name to send as SNI and to check the upstream's certificate against, when it is not the upstream URL's host (e.g. a service-mesh identity).",
      }),
    ),
  },
  {
    ...strict,
    description:
      'TLS to an https upstream: a private CA, a client certificate (mutual TLS), a server name. Same file/PEM rules and load-time checks as oidc.tls.',
  },
)

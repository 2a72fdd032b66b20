/**
 * OpenSSL's verification results, as Node reports them on a failed
 * handshake (`error.code`), said for the operator: which side to fix.
 */
const VERIFY: Readonly<Record<string, string>> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "the server's certificate does not chain to a trusted CA (tls.ca)",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "the server's certificate does not chain to a trusted CA (tls.ca)",
  UNABLE_TO_GET_ISSUER_CERT: "the server's certificate does not chain to a trusted CA (tls.ca)",
  SELF_SIGNED_CERT_IN_CHAIN: "the server's certificate does not chain to a trusted CA (tls.ca)",
  DEPTH_ZERO_SELF_SIGNED_CERT: "the server's certificate is self-signed and not trusted (tls.ca)",
  CERT_SIGNATURE_FAILURE: "the server's certificate signature does not verify",
  CERT_HAS_EXPIRED: "the server's certificate has expired",
  CERT_NOT_YET_VALID: "the server's certificate is not valid yet",
  CERT_REVOKED: "the server's certificate is revoked",
  ERR_TLS_CERT_ALTNAME_INVALID: "the server's certificate is not for this host name (tls.servername)",
}

/** A TLS alert with which the peer refused the client's certificate: what it says, and what mends it. */
export interface CertificateRefusal {
  /** Its name in RFC 8446 §6.2: `unknown_ca`, `certificate_expired`, …. */
  readonly alert: string
  readonly meaning: string
  readonly remedy: string
}

/**
 * The TLS alerts (RFC 8446 §6.2; RFC 5246 §7.2.2 names the same ones) with
 * which a server refuses the client's certificate. `handshake_failure` is
 * not one: a server sends it too when the two sides share no cipher or
 * version.
 */
const CERTIFICATE_ALERTS: Readonly<Record<string, Omit<CertificateRefusal, 'alert'>>> = {
  bad_certificate: {
    meaning: 'it could not verify the certificate',
    remedy: 'check that the certificate file holds its whole chain and that the server trusts its CA',
  },
  unsupported_certificate: {
    meaning: 'it does not take a certificate of this type or key usage',
    remedy: 'use one whose extendedKeyUsage allows clientAuth, with a key type the server takes',
  },
  certificate_revoked: { meaning: 'the certificate is revoked', remedy: 'have a new one issued' },
  certificate_expired: {
    meaning: "the certificate has expired, or is not valid yet, by the server's clock",
    remedy: "renew it, or check the server's clock",
  },
  certificate_unknown: {
    meaning: 'it would not accept the certificate, and did not say why',
    remedy: 'check that the server trusts its CA, and that it is valid, not revoked and allows clientAuth',
  },
  unknown_ca: {
    meaning: 'it does not trust the CA that issued the certificate',
    remedy: 'give the server that CA, or use a certificate from a CA it trusts',
  },
  access_denied: {
    meaning: 'the certificate is valid, but the server does not let its subject in',
    remedy: 'allow the subject at the server',
  },
  // RFC 8446 §4.4.2.4: TLS 1.3's own.
  certificate_required: {
    meaning: 'it requires a client certificate and got none it could use',
    remedy:
      'check that its key is of a type the server takes: one is sent only when it suits a signature algorithm the server asks for',
  },
}

/**
 * The refusal of the client's certificate that a failed connection's
 * `code` reports, or `undefined` when it reports something else. Node
 * names an alert it received by OpenSSL's words for it:
 * `ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE`, `ERR_SSL_TLSV1_ALERT_UNKNOWN_CA`,
 * OpenSSL 3's `ERR_SSL_SSL/TLS_ALERT_CERTIFICATE_EXPIRED`. A reset or a
 * close without an alert says nothing of the certificate: Node's own TLS
 * server checks a client certificate after the handshake and closes so,
 * and a crashing server looks the same.
 */
export function certificateRefusal(code: string | undefined): CertificateRefusal | undefined {
  const named = /^ERR_SSL_.*_ALERT_([A-Z_]+)$/.exec(code ?? '')?.[1]?.toLowerCase()
  return named === undefined ? undefined : certificateAlert(named)
}

/** The refusal an alert of this name (RFC 8446 §6.2) says, if it refuses the client's certificate. */
export function certificateAlert(alert: string): CertificateRefusal | undefined {
  const known = Object.hasOwn(CERTIFICATE_ALERTS, alert) ? CERTIFICATE_ALERTS[alert] : undefined
  return known && { alert, ...known }
}

/**
 * Why a connection failed in its TLS handshake, or `undefined` when it did
 * not fail there. A server that wants a client certificate and did not get
 * one (or did not trust it) answers with a TLS alert (RFC 8446 §6.2),
 * which Node reports as `ERR_SSL_*ALERT*`; over TLS 1.3 it comes on the
 * first read, after the handshake (connect-options.ts keeps it the error).
 */
export function tlsFailureReason(error: { code?: string | undefined; message?: string }): string | undefined {
  const code = error.code ?? ''
  const known = VERIFY[code]
  if (known) return known
  const refusal = certificateRefusal(code)
  if (refusal?.alert === 'certificate_required')
    return 'the server requires a client certificate and got none (tls.cert, tls.key)'
  if (refusal)
    return `the server refused the client certificate: ${refusal.meaning} (alert ${refusal.alert}; tls.cert, tls.key)`
  if (/^ERR_SSL_.*ALERT_HANDSHAKE_FAILURE/.test(code))
    return 'the server refused the client certificate, or wanted one and got none (tls.cert, tls.key)'
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return `TLS handshake failed (${code})`
  return undefined
}

/**
 * A TLS 1.3 server checks the client certificate after the client has
 * finished its side of the handshake (RFC 8446 §4.4.2.4), so its refusal
 * alert arrives once the request is written, and undici reports only that
 * the other side closed (`UND_ERR_SOCKET`, nothing read). Said as a hint, not
 * as the cause: a crashing upstream looks the same.
 */
export function closedUnansweredHint(error: {
  code?: string | undefined
  socket?: { bytesRead?: number } | undefined
}): string | undefined {
  if (error.code !== 'UND_ERR_SOCKET' || error.socket?.bytesRead !== 0) return undefined
  return CLOSED_UNANSWERED
}

/**
 * The same for a WebSocket dial, which `ws` makes with node:http: there a
 * peer that closes before the handshake's answer is `ECONNRESET` (a dial
 * that failed has, by then, read no answer).
 */
export function dialClosedHint(error: { code?: string | undefined }): string | undefined {
  return error.code === 'ECONNRESET' ? CLOSED_UNANSWERED : undefined
}

const CLOSED_UNANSWERED =
  'the upstream closed the connection without answering; an https upstream that requires a client certificate does so when it got none or did not trust it (routes[].tls.cert, key)'

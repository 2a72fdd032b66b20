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
  // RFC 8446 §6.2 alert 116, TLS 1.3's own.
  if (/^ERR_SSL_.*ALERT_CERTIFICATE_REQUIRED/.test(code))
    return 'the server requires a client certificate and got none (tls.cert, tls.key)'
  if (
    /^ERR_SSL_.*(HANDSHAKE_FAILURE|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|ACCESS_DENIED)/.test(code)
  )
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

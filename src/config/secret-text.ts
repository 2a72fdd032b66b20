/*
 * What the characters of a secret say about how it was set. A secret read
 * from a file, or set by `echo`, often ends with a line break the secret
 * never had; nothing downstream trims it, since a secret is compared
 * byte for byte.
 */

/** RFC 6749 Appendix A.2: `client-secret = *VSCHAR`, printable ASCII (%x20-7E). */
export const VSCHAR = /^[\x20-\x7e]*$/

/** Whether `text` holds a C0 control or DEL: a line break, a tab. */
function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x20 || code === 0x7f) return true
  }
  return false
}

/** Why a client secret cannot be right: it holds a control character, which no identity provider's has. */
export function clientSecretProblem(secret: string): string | undefined {
  if (!hasControl(secret)) return undefined
  if (!hasControl(secret.replace(/[\r\n]+$/, '')))
    return 'ends with a line break, as a file or `echo` leaves one: remove it (a client secret is printable ASCII, RFC 6749 Appendix A.2)'
  return 'holds a control character (a tab, a line break): a client secret is printable ASCII (RFC 6749 Appendix A.2)'
}

/** What RFC 6749 allows of a client secret, or some IdPs take, but is likely a slip. */
export function clientSecretWarning(secret: string): string | undefined {
  if (hasControl(secret)) return undefined // an error already (clientSecretProblem)
  if (/^ | $/.test(secret))
    return "starts or ends with a space, which is part of the secret: remove it unless the identity provider's secret has it too"
  if (!VSCHAR.test(secret))
    return 'holds characters outside printable ASCII (RFC 6749 Appendix A.2): an identity provider may refuse it, in a Basic header (client_secret_basic) especially'
  return undefined
}

/**
 * Why a client id cannot be right. It is sent in the clear, in the URL
 * every browser is sent to at login: a PEM block there is a key or a
 * certificate in the wrong option (or the wrong variable), which must not
 * go out, nor be quoted back. RFC 6749 Appendix A.1: `client-id = *VSCHAR`,
 * so a control character (an id read from a file, with its line break) is
 * in no IdP's. Characters beyond ASCII are left to the IdP: some take them.
 */
export function clientIdProblem(clientId: string): string | undefined {
  if (/-----BEGIN [A-Z0-9 ]*-----/.test(clientId))
    return 'holds a PEM block (-----BEGIN …-----): a key or certificate goes in clientKey or tls, never in the client id, which is sent in the clear'
  if (hasControl(clientId))
    return 'holds a control character (a line break, a tab, an escape): a client id is printable ASCII (RFC 6749 Appendix A.1)'
  return undefined
}

/** A session secret is key material, any bytes; whitespace around it is still likely a slip. */
export function sessionSecretWarning(secret: string): string | undefined {
  if (!/^\s|\s$/.test(secret)) return undefined
  return "starts or ends with whitespace (a line break, as a file or `echo` leaves one, or a space), which is part of the secret: every instance must read it alike, or none opens another's cookies"
}

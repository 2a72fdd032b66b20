import { createHash } from 'node:crypto'

const entities: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => entities[c]!)
}

/** No scripts, no styles from elsewhere, no framing: the page is inert. */
export const PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

/**
 * Where the callback leaves the browser when the session cookie is
 * `SameSite=Strict`: the IdP started this navigation from another site, so
 * a redirect to `returnTo` would still be cross-site and arrive without the
 * cookie just set. A refresh from this page is a navigation this origin
 * starts, which carries it. No script; the link is for browsers that
 * ignore the refresh. `location` is a same-origin path (`safeReturnTo`).
 */
export function landingPage(location: string): string {
  const href = escapeHtml(location)
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=${href}">
<title>Signed in</title></head>
<body><p><a href="${href}">Continue</a></p></body></html>
`
}

/** The one script the logout page runs; its hash is all its CSP lets run. */
const SUBMIT = 'document.forms[0].submit()'
const SUBMIT_HASH = `'sha256-${createHash('sha256').update(SUBMIT).digest('base64')}'`

/**
 * The logout page's policy: its own submit script and nothing else, a form
 * that may go only to the IdP's endpoint, and back to this origin, where
 * an OP redirects after the POST (browsers check form-action on redirects).
 */
export function endSessionCsp(endpoint: URL, publicUrl: string): string {
  return [
    "default-src 'none'",
    `script-src ${SUBMIT_HASH}`,
    "style-src 'unsafe-inline'",
    `form-action ${endpoint.origin} ${new URL(publicUrl).origin}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ')
}

/**
 * RP-Initiated Logout 1.0 §2 by POST: the ID token travels in a form body,
 * never in a URL, so it stays out of the address bar, the history and the
 * IdP's access log. The form submits itself; if script is blocked, the
 * button does the same. Every value is escaped.
 */
export function endSessionPage(endpoint: URL, params: URLSearchParams): string {
  let fields = ''
  for (const [name, value] of params)
    fields += `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Signing out</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1f2933}</style></head>
<body><form method="post" action="${escapeHtml(endpoint.href)}">${fields}
<p>Signing you out at your identity provider…</p>
<p><button type="submit">Continue</button></p></form>
<script>${SUBMIT}</script></body></html>
`
}

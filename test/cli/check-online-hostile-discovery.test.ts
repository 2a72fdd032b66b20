/**
 * `gatehouse check --online` prints what the IdP's discovery document
 * advertises. A hostile or broken IdP's values once reached the terminal
 * as sent: an escape sequence in an algorithm name recoloured the table,
 * set the window title or, after a carriage return, overwrote the verdict;
 * a 1 MB value padded every row of the table to 1 MB; and a list sent as
 * a string or a number ended the check with "unexpected error", exit 2.
 */
import t from 'tap'
import { checkOnline, devIdpForCheck } from '../helpers/check-online.js'

/** What a terminal acts on or shows otherwise than it is: controls (ESC, CR, BEL, C1 CSI), bidi overrides, line separators. */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u
const HOSTILE = '\u001b[2J\u001b]0;pwned\u0007\r\u009b31m\u202eEVIL\u2028'

t.test(
  'IdP strings reach the terminal without controls, bidi overrides or line separators, and bounded',
  async (t) => {
    const idp = await devIdpForCheck(t, {
      quirks: {
        discoveryDocument: (doc) => ({
          ...doc,
          prompt_values_supported: ['login', 'consent', HOSTILE],
          code_challenge_methods_supported: ['S256', HOSTILE],
          token_endpoint_auth_methods_supported: ['client_secret_basic', HOSTILE, 'x'.repeat(1_000_000)],
          dpop_signing_alg_values_supported: [HOSTILE],
        }),
      },
    })
    const r = await checkOnline(
      idp.issuer,
      '  clientSecret: s3cret\n  dpop: true\n  authorizationParams: { prompt: consent }',
    )
    const lines = `${r.out}\n${r.err}`.split('\n')
    // Counted, not listed: a failure would otherwise print megabytes.
    t.equal(
      lines.filter((l) => UNSAFE.test(l)).length,
      0,
      'no line holds a control, format or separator character',
    )
    t.ok(r.out.length < 64 * 1024, `the output stays small (${r.out.length} characters)`)
    t.match(r.out, /^PKCE S256 .* S256, {2}\[2J/m, 'the row is there, the escape shown as spaces and text')
    t.match(r.out, /^DPoP \(RFC 9449\) .*BLOCKING$/m, 'the algorithm the IdP lists is not the configured one')
    t.equal(r.code, 1, r.err)
  },
)

t.test(
  'a list the IdP sends as something else is named in a hint and read as not listed, not a crash',
  async (t) => {
    const idp = await devIdpForCheck(t, {
      quirks: {
        discoveryDocument: (doc) => ({
          ...doc,
          code_challenge_methods_supported: 'S256',
          scopes_supported: 5,
          grant_types_supported: { refresh_token: true },
          prompt_values_supported: ['consent', 7],
        }),
      },
    })
    const r = await checkOnline(
      idp.issuer,
      '  clientSecret: s3cret\n  authorizationParams: { prompt: consent }',
    )
    t.notMatch(r.err, /unexpected error/)
    t.equal(r.code, 0, r.err)
    for (const [field, kind] of [
      ['code_challenge_methods_supported', 'a string'],
      ['scopes_supported', 'a number'],
      ['grant_types_supported', 'an object'],
      ['prompt_values_supported', 'a list holding a number'],
    ] as const)
      t.match(
        r.out,
        `hint: the identity provider advertises ${field} as ${kind}, not a list of strings (RFC 8414 §2); read as not listed`,
        field,
      )
    t.match(r.out, /^PKCE S256 +S256 +not listed +warn$/m)
    t.match(r.out, /^OK: /m)
  },
)

t.test('the revocation endpoint methods sent as no list: read as not listed there too', async (t) => {
  for (const methods of [5, 'private_key_jwt']) {
    const idp = await devIdpForCheck(t, {
      quirks: {
        discoveryDocument: (doc) => ({
          ...doc,
          // A token endpoint whose answer says nothing of the client (a 404), so the probe asks the revocation endpoint.
          token_endpoint: `${doc.issuer}/nowhere`,
          revocation_endpoint_auth_methods_supported: methods,
        }),
      },
    })
    const r = await checkOnline(idp.issuer)
    t.notMatch(r.err, /unexpected error/, String(methods))
    t.match(r.out, 'hint: the identity provider advertises revocation_endpoint_auth_methods_supported as a ')
    t.match(
      r.out,
      /^client credentials \(probe\) .* at the revocation endpoint/m,
      'asked as client_secret_basic',
    )
  }
})

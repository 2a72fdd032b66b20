import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { configHead, configProblems } from '../helpers/config-problems.js'

/*
 * A client secret read from a file or set by `echo` ends with a newline,
 * which no identity provider's secret has: `check` passed it, and `check
 * --online` called the IdP's answer to it (oidc-provider: invalid_request,
 * "not properly encoded") acceptance. A control character is never part of
 * a client secret (RFC 6749 Appendix A.2: printable ASCII), so it is an
 * error; what RFC 6749 allows but is likely a slip gets a warning.
 */

const SESSION = 's'.repeat(40)

const config = (session = `secret: "${SESSION}"`) => configHead(session)

const warningsOf = (text: string, env: NodeJS.ProcessEnv) => {
  const warnings: string[] = []
  parseConfig(text, 'routes.yaml', env, {
    onWarning: (w) => warnings.push(`${w.line} ${w.path}: ${w.message}`),
  })
  return warnings
}

t.test('a client secret with a line break or another control character is an error', async (t) => {
  for (const secret of ['client-secret\n', 'client-secret\r\n']) {
    const found = configProblems(config(), { OIDC_CLIENT_SECRET: secret })
    t.same(found, [
      '6 oidc.clientSecret: ends with a line break, as a file or `echo` leaves one: remove it (a client secret is printable ASCII, RFC 6749 Appendix A.2)',
    ])
    t.notMatch(found.join('\n'), 'client-secret', 'the secret is not shown')
  }
  t.same(configProblems(config(), { OIDC_CLIENT_SECRET: 'client\tsecret' }), [
    '6 oidc.clientSecret: holds a control character (a tab, a line break): a client secret is printable ASCII (RFC 6749 Appendix A.2)',
  ])
  t.same(
    configProblems(
      config().replace(
        'oidc:\n  issuer: https://idp.example.com\n  clientId: my-bff\n  clientSecret: ${OIDC_CLIENT_SECRET}',
        'identityProviders:\n  - name: corp\n    issuer: https://idp.example.com\n    clientId: my-bff\n    clientSecret: "${OIDC_CLIENT_SECRET}"',
      ),
      { OIDC_CLIENT_SECRET: 'client-secret\n' },
    ),
    [
      '7 identityProviders[0].clientSecret: ends with a line break, as a file or `echo` leaves one: remove it (a client secret is printable ASCII, RFC 6749 Appendix A.2)',
    ],
  )
})

t.test('a client secret with spaces around it, or outside ASCII, loads with a warning', async (t) => {
  t.same(warningsOf(config(), { OIDC_CLIENT_SECRET: ' client-secret ' }), [
    "6 oidc.clientSecret: starts or ends with a space, which is part of the secret: remove it unless the identity provider's secret has it too",
  ])
  t.same(warningsOf(config(), { OIDC_CLIENT_SECRET: 'sécret-of-the-client' }), [
    '6 oidc.clientSecret: holds characters outside printable ASCII (RFC 6749 Appendix A.2): an identity provider may refuse it, in a Basic header (client_secret_basic) especially',
  ])
  t.same(warningsOf(config(), { OIDC_CLIENT_SECRET: 'client secret' }), [], 'a space inside is no slip')
})

t.test('a session secret with whitespace around it loads with a warning', async (t) => {
  for (const [session, at] of [
    ['secret: ${SESSION_SECRET}', '8 session.secret'],
    [`secrets: ["${SESSION}", "\${SESSION_SECRET}"]`, '8 session.secrets[1]'],
  ]) {
    for (const value of [`${SESSION}\n`, ` ${SESSION}`]) {
      const warnings = warningsOf(config(session), { OIDC_CLIENT_SECRET: 'x', SESSION_SECRET: value })
      t.same(warnings, [
        `${at}: starts or ends with whitespace (a line break, as a file or \`echo\` leaves one, or a space), which is part of the secret: every instance must read it alike, or none opens another's cookies`,
      ])
      t.notMatch(warnings.join('\n'), SESSION, 'the secret is not shown')
    }
  }
})

t.test('secrets as they should be: no problem and no warning', async (t) => {
  t.same(warningsOf(config(), { OIDC_CLIENT_SECRET: 'An~Entra.ID_secret-0123456789' }), [])
})

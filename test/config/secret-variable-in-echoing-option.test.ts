import t from 'tap'
import { configHead, configProblems } from '../helpers/config-problems.js'

/*
 * An option whose problem quotes its value (an enum, a duration, a size)
 * printed whatever a variable put there: a secret's variable in the wrong
 * option, `clientAuth: ${OIDC_CLIENT_SECRET}` after a slip of the editor,
 * or a value pasted into the wrong variable, went to the terminal and to
 * the CI log. A variable named like a secret is now not quoted back.
 */

const SECRET = 'Sup3r-s3cret-value-0f-the-client'
const env = { OIDC_CLIENT_SECRET: 'client-secret', SESSION_SECRET: 'x'.repeat(32) }

t.test(
  'a secret-named variable in an option that quotes its value: named, its value not shown',
  async (t) => {
    const cases: [string, Record<string, string>, string][] = [
      [
        '  clientAuth: ${OIDC_CLIENT_SECRET}\n',
        { OIDC_CLIENT_SECRET: SECRET },
        '6 oidc.clientAuth: must be one of client_secret_basic, client_secret_post, private_key_jwt, tls_client_auth, self_signed_tls_client_auth (got "[redacted: the value of OIDC_CLIENT_SECRET]")',
      ],
      [
        '  timeout: "${IDP_API_TOKEN}"\n',
        { IDP_API_TOKEN: SECRET },
        '6 oidc.timeout: must be a duration like 500ms, 30s, 5m, 12h, 1d or a number of seconds (got "[redacted: the value of IDP_API_TOKEN]")',
      ],
      [
        '  par: "mode-${DB_PASSWORD}-x"\n',
        { DB_PASSWORD: SECRET },
        '6 oidc.par: must be one of auto, required, off (got "mode-[redacted: the value of DB_PASSWORD]-x")',
      ],
      [
        '  authorizationParams: { max_age: "${PRIVATE_KEY}" }\n',
        { PRIVATE_KEY: `${SECRET}\n"quoted"` },
        `6 oidc.authorizationParams.max_age: must be a whole number of seconds (OpenID Connect Core §3.1.2.1), such as '300'; got "[redacted: the value of PRIVATE_KEY]"`,
      ],
    ]
    for (const [line, vars, problem] of cases) {
      const text = configHead().replace('  clientId: my-bff\n', `  clientId: my-bff\n${line}`)
      const problems = configProblems(text, { ...env, ...vars })
      t.same(problems, [problem], line.trim())
      t.notMatch(problems.join('\n'), 'Sup3r', 'no part of the secret')
    }
  },
)

t.test('a variable not named like a secret is still quoted: it is what to fix', async (t) => {
  const text = configHead().replace('  clientId: my-bff\n', '  clientId: my-bff\n  timeout: ${IDP_TIMEOUT}\n')
  t.same(configProblems(text, { ...env, IDP_TIMEOUT: '30 seconds' }), [
    '6 oidc.timeout: must be a duration like 500ms, 30s, 5m, 12h, 1d or a number of seconds (got "30 seconds")',
  ])
})

t.test(
  "a secret option's value is not quoted anywhere, whatever the variable that put it elsewhere is called",
  async (t) => {
    // The client's secret pasted into a second variable by mistake, and one
    // variable not named like a secret feeding both the secret and an echoing option.
    const cases: [string, string, Record<string, string>, string][] = [
      [
        '  clientSecret: ${OIDC_CLIENT_SECRET}\n  par: ${IDP_PAR}\n',
        'IDP_PAR',
        { OIDC_CLIENT_SECRET: SECRET, IDP_PAR: SECRET },
        '7 oidc.par: must be one of auto, required, off (got "[redacted: the value of OIDC_CLIENT_SECRET]")',
      ],
      [
        '  clientSecret: ${IDP_CS}\n  timeout: "${IDP_CS}"\n',
        'IDP_CS',
        { IDP_CS: SECRET },
        '7 oidc.timeout: must be a duration like 500ms, 30s, 5m, 12h, 1d or a number of seconds (got "[redacted: the value of IDP_CS]")',
      ],
      [
        '  clientAuth: private_key_jwt\n  clientKey: { pem: "${IDP_PEM}" }\n  par: "${IDP_PEM}"\n',
        'IDP_PEM',
        { IDP_PEM: `-----BEGIN PRIVATE KEY-----\n${SECRET}\n-----END PRIVATE KEY-----` },
        '8 oidc.par: must be one of auto, required, off (got "[redacted: the value of IDP_PEM]")',
      ],
    ]
    for (const [lines, name, vars, problem] of cases) {
      const text = configHead().replace('  clientSecret: ${OIDC_CLIENT_SECRET}\n', lines)
      const problems = configProblems(text, { ...env, ...vars })
      t.same(problems, [problem], name)
      t.notMatch(problems.join('\n'), 'Sup3r', 'no part of the secret')
    }
  },
)

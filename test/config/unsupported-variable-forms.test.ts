import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { configHead, configProblems } from '../helpers/config-problems.js'

/*
 * Only ${VAR} and ${VAR:-default} are replaced. Any other ${…} (a shell's
 * ${VAR:?msg} or ${VAR-default}, a templating tool's ${env:VAR}) was kept
 * as text, so an unset secret became the text written in the file, and
 * `check` passed. So was a bare $VAR where a secret goes.
 */

const SECRET = 's'.repeat(40)

const config = (secret: string, extra = '', session = '') =>
  `${configHead(`secret: ${secret}`)}${session}${extra}`

const env = { OIDC_CLIENT_SECRET: 'client-secret' }

t.test(
  'a ${…} form other than ${VAR} and ${VAR:-default} is an error at its option, set or not',
  async (t) => {
    const forms: [string, string][] = [
      ['"${SESSION_SECRET:?set it to 32 characters or more, please}"', '${SESSION_SECRET:?…}'],
      ['"${SESSION_SECRET-a-default-of-more-than-32-characters}"', '${SESSION_SECRET-…}'],
      ['"${env:SESSION_SECRET}-and-enough-text-for-32-characters"', '${env:…}'],
      ['"${SESSION_SECRET:=a-default-of-more-than-32-characters}"', '${SESSION_SECRET:=…}'],
      ['"${ SESSION_SECRET }-and-enough-text-for-32-characters"', '${…}'],
      ['"${SESSION_SECRET:-${OTHER_SECRET}}-and-enough-text-for-32"', '${SESSION_SECRET:-${…}'],
      ['"${SESSION_SECRET-and-enough-text-for-32-characters-unclosed"', '${SESSION_SECRET-…}'],
    ]
    for (const [form, shown] of forms) {
      for (const vars of [env, { ...env, SESSION_SECRET: SECRET, OTHER_SECRET: SECRET }]) {
        t.same(
          configProblems(config(form), vars),
          [
            `8 session.secret: ${shown} is not a reference Gatehouse replaces (only \${VAR} and \${VAR:-default} are), and would be kept as text`,
          ],
          `${form}, SESSION_SECRET ${'SESSION_SECRET' in vars ? 'set' : 'unset'}`,
        )
      }
    }
  },
)

t.test('any option is checked, not only secrets', async (t) => {
  t.same(
    configProblems(
      config(
        '${SESSION_SECRET}',
        'routes:\n  - path: /api\n    upstream: "${UPSTREAM-http://orders:8080}"\n',
      ),
      { ...env, SESSION_SECRET: SECRET },
    ),
    [
      '11 routes[0].upstream: ${UPSTREAM-…} is not a reference Gatehouse replaces (only ${VAR} and ${VAR:-default} are), and would be kept as text',
    ],
  )
})

t.test('a bare $VAR where a secret goes, or named as a secret, is an error', async (t) => {
  t.same(
    configProblems(config('$SESSION_SECRET_WHICH_IS_MORE_THAN_32_CHARACTERS'), {
      ...env,
      SESSION_SECRET_WHICH_IS_MORE_THAN_32_CHARACTERS: SECRET,
    }),
    [
      '8 session.secret: $SESSION_SECRET_WHICH_IS_MORE_THAN_32_CHARACTERS is not replaced (only ${SESSION_SECRET_WHICH_IS_MORE_THAN_32_CHARACTERS} is), and would be kept as the secret',
    ],
  )
  t.same(configProblems(config(`${'k'.repeat(32)}$X`), env), [
    '8 session.secret: $X is not replaced (only ${X} is), and would be kept as the secret',
  ])
  t.same(
    configProblems(config('${SESSION_SECRET}', '', '  store: redis://:$REDIS_PASSWORD@redis:6379/0\n'), {
      ...env,
      SESSION_SECRET: SECRET,
    }),
    [
      '9 session.store: $REDIS_PASSWORD is not replaced (only ${REDIS_PASSWORD} is), and would be kept as the secret',
    ],
  )
})

t.test('what the supported forms bring in is not read again, and a $ in other text stays', async (t) => {
  const loaded = parseConfig(
    config(
      '${SESSION_SECRET}',
      'auth:\n  basePath: /auth\n  loginParams: [prompt]\nroutes:\n  - path: /api\n    upstream: ${UPSTREAM:-http://orders:8080}\n',
    ).replace('clientId: my-bff', 'clientId: my-$bff'),
    'routes.yaml',
    { OIDC_CLIENT_SECRET: '${NOT_READ:?x}$ALSO_NOT', SESSION_SECRET: `\${SESSION_SECRET-x}${SECRET}` },
  )
  t.equal(loaded.oidc.clientSecret, '${NOT_READ:?x}$ALSO_NOT')
  t.equal(loaded.session.secrets[0], `\${SESSION_SECRET-x}${SECRET}`)
  t.equal(loaded.oidc.clientId, 'my-$bff', 'a $ outside a secret is text')
  t.equal(loaded.routes[0]!.upstream, 'http://orders:8080')
})

import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { CONFIG_ENV, configProblems, MINIMAL_CONFIG } from '../helpers/config-problems.js'

/*
 * The client id is sent in the clear: in the authorization URL every
 * browser is sent to, in IdP logs, and in check --online's hints. A PEM
 * private key pasted there (or put in the wrong variable) passed `check`
 * and went out with every login; a control character (an id from a file,
 * with its line break) passed too, and no IdP ever matched it.
 */

const KEY = `-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n`
/** The minimal config with its client id from CLIENT_ID. */
const CONFIG = MINIMAL_CONFIG.replace('clientId: my-bff', 'clientId: "${CLIENT_ID}"')

t.test('a PEM block in the client id is refused, and not quoted', async (t) => {
  const problems = configProblems(CONFIG, { ...CONFIG_ENV, CLIENT_ID: KEY })
  t.same(problems, [
    '5 oidc.clientId: holds a PEM block (-----BEGIN …-----): a key or certificate goes in clientKey or tls, never in the client id, which is sent in the clear',
  ])
  t.notMatch(problems.join('\n'), 'MIIE')
})

t.test('a control character in the client id is refused', async (t) => {
  for (const id of ['my-bff\n', 'my\tbff', 'my-bff\u001b[0m'])
    t.same(
      configProblems(CONFIG, { ...CONFIG_ENV, CLIENT_ID: id }),
      [
        '5 oidc.clientId: holds a control character (a line break, a tab, an escape): a client id is printable ASCII (RFC 6749 Appendix A.1)',
      ],
      JSON.stringify(id),
    )
})

t.test('ids of the printable characters RFC 6749 allows, and beyond ASCII, still load', async (t) => {
  for (const id of ['my-bff', 'urn:app:1 2', 'a!"#$%&()*+,./:;=?@[\\]^_`~', 'bff-é'])
    t.equal(parseConfig(CONFIG, 'routes.yaml', { ...CONFIG_ENV, CLIENT_ID: id }).oidc.clientId, id)
})

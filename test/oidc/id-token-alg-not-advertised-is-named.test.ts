/**
 * An OP that signs ID tokens ES256 and leaves `id_token_signing_alg_values_supported`
 * out of its discovery document (OpenID Connect Discovery 1.0 §3 requires
 * it) gets RS256 alone accepted (OIDC Core §3.1.3.7, oauth4webapi's
 * default): every sign-in failed with "unexpected JWT "alg" header
 * parameter", logged at info, and the discovery said nothing. Both now
 * name the member and the algorithm.
 */

import { exportJWK, generateKeyPair } from 'jose'
import t, { type Test } from 'tap'
import type { DevIdpQuirks } from '../../dev/idp.js'
import { login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'

async function es256Stack(t: Test, discoveryDocument: NonNullable<DevIdpQuirks['discoveryDocument']>) {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true })
  return startObservedStack(t, {
    client: { idTokenSignedResponseAlg: 'ES256' },
    idp: {
      signingKey: { ...(await exportJWK(privateKey)), kid: 'ec', alg: 'ES256', use: 'sig' },
      quirks: { discoveryDocument },
    },
  })
}

t.test(
  'no id_token_signing_alg_values_supported: warned at discovery, and the failed sign-in says why',
  async (t) => {
    const stack = await es256Stack(t, ({ id_token_signing_alg_values_supported: _, ...doc }) => doc)
    t.match(
      stack.lines.filter((l) => l.level === 40),
      [{ msg: /advertises no id_token_signing_alg_values_supported .*accepted only signed RS256/ }],
      'one warning, at discovery',
    )
    const { callback } = await login(stack.gateway.url)
    t.equal(callback.status, 400)
    t.match(
      callback.text,
      /signed ES256, and the identity provider advertises no id_token_signing_alg_values_supported/,
    )
  },
)

t.test('an ID token of an algorithm the list leaves out: the page names both', async (t) => {
  const stack = await es256Stack(t, (doc) => ({
    ...doc,
    id_token_signing_alg_values_supported: ['RS256', 'PS256'],
  }))
  t.same(
    stack.lines.filter((l) => l.level >= 40),
    [],
    'an advertised list: nothing to warn about',
  )
  const { callback } = await login(stack.gateway.url)
  t.equal(callback.status, 400)
  t.match(
    callback.text,
    /signed ES256, which is not in its id_token_signing_alg_values_supported \(RS256, PS256\)/,
  )
})

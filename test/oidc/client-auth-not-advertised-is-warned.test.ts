/**
 * An IdP whose discovery document does not list the configured client
 * authentication: the gateway starts and tries it all the same (IdPs
 * list fewer methods than they take), but says so once at discovery,
 * where the operator of an independent OP first looks, instead of only
 * at the first refused token request.
 */

import t from 'tap'
import { login } from '../helpers/login.js'
import { type LogLine, startObservedStack } from '../helpers/observed-stack.js'

const notAdvertised = (lines: readonly LogLine[]) =>
  lines.filter((l) => l.code === 'GATEHOUSE_CLIENT_AUTH_NOT_ADVERTISED')

t.test('a list without the configured method: warned once, with both, and sign-in still tried', async (t) => {
  const stack = await startObservedStack(t, {
    idp: {
      quirks: {
        discoveryDocument: (doc) => ({ ...doc, token_endpoint_auth_methods_supported: ['private_key_jwt'] }),
      },
    },
  })
  const lines = notAdvertised(stack.lines)
  t.equal(lines.length, 1, 'one line')
  t.match(lines[0], {
    level: 40,
    idp: 'default',
    option: 'oidc.clientAuth',
    clientAuth: 'client_secret_basic',
    advertised: ['private_key_jwt'],
    msg: /oidc\.clientAuth is client_secret_basic.*token_endpoint_auth_methods_supported lists private_key_jwt.*check --online/,
  })
  const { jar } = await login(stack.gateway.url)
  t.ok(jar.get(stack.gateway.url, 'gatehouse'), 'the method is tried all the same, and this IdP takes it')
})

t.test('no list at all means client_secret_basic only (RFC 8414 §2)', async (t) => {
  const stack = await startObservedStack(t, {
    config: { oidc: { clientAuth: 'client_secret_post' } },
    idp: {
      quirks: {
        discoveryDocument: ({ token_endpoint_auth_methods_supported: _, ...doc }) => doc,
      },
    },
  })
  t.match(notAdvertised(stack.lines), [
    {
      clientAuth: 'client_secret_post',
      advertised: ['client_secret_basic'],
      msg: /lists no token_endpoint_auth_methods_supported, which means client_secret_basic only \(RFC 8414 §2\)/,
    },
  ])
})

t.test('the configured method listed: nothing said', async (t) => {
  const stack = await startObservedStack(t)
  t.same(notAdvertised(stack.lines), [])
  t.ok(
    stack.gateway.app.gatehouse.oidc.metadata!.token_endpoint_auth_methods_supported!.includes(
      'client_secret_basic',
    ),
    'the dev IdP lists the default method',
  )
})

import { generateKeyPairSync } from 'node:crypto'
import type { KoaContextWithOIDC } from 'oidc-provider'
import t from 'tap'
import type { GatehouseConfig } from '../../src/config/types.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

/** A key pair as the config and the IdP registration hold it: private JWK with alg, public JWKS. */
function keyPair(): {
  clientKey: GatehouseConfig['oidc']['clientKey']
  jwks: { keys: Record<string, unknown>[] }
} {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const kid = 'gatehouse-test-1'
  return {
    clientKey: { jwk: { ...privateKey.export({ format: 'jwk' }), alg: 'ES256', kid } },
    jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), alg: 'ES256', kid, use: 'sig' }] },
  }
}

t.test(
  'a private_key_jwt-only client (RFC 7523): login, refresh, client credentials and logout, no secret anywhere',
  async (t) => {
    const pair = keyPair()
    const { jwks } = pair
    // Entra ID finds certificate credentials by thumbprint (x5t#S256), not kid.
    const clientKey = { jwk: { ...pair.clientKey!.jwk, 'x5t#S256': 'dGh1bWJwcmludA' } }
    const clock = new TestClock()
    const stack = await startStack(t, {
      client: { clientSecret: undefined, tokenEndpointAuthMethod: 'private_key_jwt', jwks },
      config: { oidc: { clientAuth: 'private_key_jwt', clientSecret: undefined, clientKey } },
      gateway: { now: clock.now },
    })
    const base = stack.gateway.url
    const client = await stack.idp.provider.Client.find('gatehouse-test')
    t.equal(
      client?.tokenEndpointAuthMethod,
      'private_key_jwt',
      'the IdP accepts nothing else from this client',
    )
    t.equal(client?.clientSecret, undefined)

    const assertions: string[] = []
    stack.idp.provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
      const assertion = ctx.oidc.params?.client_assertion
      if (typeof assertion === 'string') assertions.push(assertion)
    })
    const { jar, callback } = await login(base, { user: 'quinn' })
    t.equal(callback.status, 302, 'the code was redeemed with a signed assertion')
    const user = (await apiCall(jar, `${base}/auth/user`)).json<{ refreshable: boolean; logoutUrl: string }>()
    t.equal(user.refreshable, true)

    clock.advance(61_000)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'refresh authenticated the same way')
    t.equal(stack.idp.stats.refreshGrants, 1)
    t.equal((await apiCall(jar, `${base}/api/reports`)).status, 200, 'client credentials too')
    t.equal(stack.idp.stats.clientCredentialsGrants, 1)

    t.equal((await jarFetch(jar, `${base}${user.logoutUrl}`)).status, 200)
    t.equal(stack.idp.stats.revocations, 1, 'and revocation')
    t.equal(stack.idp.stats.grantErrors, 0)
    t.equal(assertions.length, 3, 'code, refresh and client credentials each carried an assertion')
    const header = JSON.parse(Buffer.from(assertions[0]!.split('.')[0]!, 'base64url').toString())
    t.match(header, { alg: 'ES256', kid: 'gatehouse-test-1', 'x5t#S256': 'dGh1bWJwcmludA' })
  },
)

t.test(
  'a key the IdP does not know: a "sign-in is misconfigured" page, and an error line naming the key, not a crash',
  async (t) => {
    const lines: Record<string, unknown>[] = []
    const registered = keyPair()
    const other = keyPair()
    const stack = await startStack(t, {
      client: { clientSecret: undefined, tokenEndpointAuthMethod: 'private_key_jwt', jwks: registered.jwks },
      config: {
        oidc: { clientAuth: 'private_key_jwt', clientSecret: undefined, clientKey: other.clientKey },
        logLevel: 'info',
      },
      gateway: { logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
    })
    const { callback, jar } = await login(stack.gateway.url, { user: 'rae' })
    t.equal(callback.status, 500, 'a configuration error, not a bad request and not an outage')
    t.match(callback.text, /Sign-in is misconfigured/)
    t.equal(jar.get(stack.gateway.url, 'gatehouse'), undefined)
    const refused = lines.find((l) => l.code === 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED' && l.level === 50)
    t.match(refused, {
      operation: 'code_exchange',
      clientAuth: 'private_key_jwt',
      oauthError: 'invalid_client',
    })
    t.match(refused?.hint, /public key of oidc\.clientKey.*clock/, 'the hint names the key and the clock')
  },
)

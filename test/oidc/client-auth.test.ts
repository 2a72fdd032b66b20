import * as oauth from 'oauth4webapi'
import t from 'tap'
import { FORM_SAFE, formClientSecretBasic, refusalHint } from '../../src/oidc/client-auth.js'
import { testConfig } from '../helpers/gateway.js'

const as: oauth.AuthorizationServer = { issuer: 'https://idp.example' }

async function basic(auth: oauth.ClientAuth, clientId: string): Promise<string> {
  const headers = new Headers()
  await auth(as, { client_id: clientId }, new URLSearchParams(), headers)
  const value = headers.get('authorization')!
  t.match(value, /^Basic /)
  return atob(value.slice(6))
}

t.test('a secret of [A-Za-z0-9*-._] goes on the wire unchanged', async (t) => {
  const secret = 'my-bff-secret_v2.0*'
  t.match(secret, FORM_SAFE)
  t.equal(await basic(formClientSecretBasic(secret), 'gatehouse-bff'), `gatehouse-bff:${secret}`)
  t.equal(
    await basic(oauth.ClientSecretBasic(secret), 'gatehouse-bff'),
    'gatehouse%2Dbff:my%2Dbff%2Dsecret%5Fv2%2E0%2A',
    "oauth4webapi's own encoding escapes them, which OPs comparing undecoded credentials refuse",
  )
})

t.test('everything else is escaped as the WHATWG form serializer does, and decodes back', async (t) => {
  for (const secret of ['a b+c', "tilde~bang!quote'(paren)", 'per%cent:colon/slash?é€😀', '&=#']) {
    const [id, sent] = (await basic(formClientSecretBasic(secret), 'client:id')).split(':') as [
      string,
      string,
    ]
    t.equal(
      sent,
      new URLSearchParams({ s: secret }).toString().slice(2),
      `${secret}: the form serializer's bytes`,
    )
    t.equal(
      new URLSearchParams(`s=${sent}`).get('s'),
      secret,
      `${secret}: RFC 6749 §2.3.1 decoding gives it back`,
    )
    t.equal(new URLSearchParams(`s=${id}`).get('s'), 'client:id', 'the id too, its colon escaped')
  }
})

t.test('the refusal hint names the Basic encoding only when it can matter', async (t) => {
  const config = (clientSecret: string, clientAuth = 'client_secret_basic' as const) =>
    testConfig({ port: 3000, issuer: 'https://idp.example', routes: [], oidc: { clientSecret, clientAuth } })
      .oidc
  t.match(
    refusalHint(config('with~tilde-and-more-characters'), 'invalid_client'),
    /Basic encoding.*client_secret_post/,
  )
  t.notMatch(refusalHint(config('plain-secret_of.safe*chars'), 'invalid_client'), /Basic encoding/)
  t.match(
    refusalHint(config('x'), 'unauthorized_client', 'refresh_token'),
    /not allowed this grant \(refresh_token\)/,
  )
})

t.test(
  'unauthorized_client names both causes: the grant, and the credentials some providers answer it for',
  async (t) => {
    const config = (oidc: Record<string, unknown>) =>
      testConfig({ port: 3000, issuer: 'https://idp.example', routes: [], oidc }).oidc
    const secret = refusalHint(config({ clientSecret: 'x' }), 'unauthorized_client', 'authorization_code')
    t.match(
      secret,
      /^either the client is not allowed this grant \(authorization_code\): allow it for client gatehouse-test/,
    )
    t.match(secret, /its grant_types/)
    t.match(
      secret,
      /check oidc\.clientSecret and that oidc\.clientAuth \(client_secret_basic\) is a method the provider allows this client\.$/,
    )
    t.match(
      refusalHint(
        config({ clientSecret: 'x', clientAuth: 'client_secret_post' }),
        'unauthorized_client',
        'refresh_token',
      ),
      /oidc\.clientAuth \(client_secret_post\)/,
    )
  },
)

t.test('hints name the option as the file sets it: oidc, or identityProviders[i]', async (t) => {
  const config = testConfig({
    port: 3000,
    issuer: 'https://idp.example',
    routes: [],
    identityProviders: [
      { name: 'corp', issuer: 'https://corp.example' },
      {
        name: 'bank',
        issuer: 'https://bank.example',
        clientSecret: 'bank-secret',
        clientAuth: 'client_secret_post',
      },
    ],
  })
  t.equal(config.identityProviders[1]!.option, 'identityProviders[1]')
  t.match(
    refusalHint(config.identityProviders[1]!, 'invalid_client'),
    /check identityProviders\[1\]\.clientSecret/,
  )
  const shorthand = testConfig({ port: 3000, issuer: 'https://idp.example', routes: [] })
  t.equal(shorthand.oidc.option, 'oidc')
  t.match(refusalHint(shorthand.oidc, 'invalid_client'), /check oidc\.clientSecret/)
})

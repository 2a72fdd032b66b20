/**
 * The dev IdP's token exchange (RFC 8693) and on-behalf-of grants, driven
 * with oauth4webapi as any client would, against its own store.
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose'
import * as oauth from 'oauth4webapi'
import t from 'tap'
import { startDevIdp } from '../../dev/idp.js'

const LEDGER = 'https://ledger.example'
const GRAPH = 'api://graph'
const BFF = { client_id: 'bff' }
const OTHER = { client_id: 'other' }
const SECRET = 'a-secret-long-enough-for-the-dev-idp'
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
const AT = 'urn:ietf:params:oauth:token-type:access_token'

const idp = await startDevIdp({
  clients: [
    { clientId: 'bff', clientSecret: SECRET, redirectUris: ['http://127.0.0.1/cb'] },
    { clientId: 'other', clientSecret: SECRET, redirectUris: ['http://127.0.0.1/cb'] },
  ],
  tokenExchange: {
    audiences: { [LEDGER]: { scopes: ['ledger.read', 'ledger.write'] }, [GRAPH]: { scopes: ['user.read'] } },
    clients: { bff: [LEDGER, GRAPH], other: [GRAPH] },
  },
})
t.teardown(() => idp.close())
const issuer = new URL(idp.issuer)
const as = await oauth.processDiscoveryResponse(
  issuer,
  await oauth.discoveryRequest(issuer, { [oauth.allowInsecureRequests]: true }),
)
const auth = oauth.ClientSecretBasic(SECRET)
const insecure = { [oauth.allowInsecureRequests]: true } as const

/** An access token the provider issued to `clientId` for alice, as a login would. */
async function subjectFor(clientId: string, jkt?: string): Promise<string> {
  const client = await idp.provider.Client.find(clientId)
  const token = new idp.provider.AccessToken({
    accountId: 'alice',
    client: client!,
    scope: 'openid',
    gty: 'authorization_code',
    grantId: 'a-grant',
  })
  if (jkt) token.jkt = jkt
  return token.save()
}

async function exchange(
  client: oauth.Client,
  grant: string,
  params: Record<string, string>,
  options: oauth.TokenEndpointRequestOptions = {},
) {
  const response = await oauth.genericTokenEndpointRequest(as, client, auth, grant, params, {
    ...insecure,
    ...options,
  })
  return oauth.processGenericTokenEndpointResponse(as, client, response)
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  return err instanceof oauth.ResponseBodyError ? err.error : `not refused: ${String(err)}`
}

t.test('an access token is exchanged for one whose aud is the requested audience', async (t) => {
  const subject = await subjectFor('bff')
  const before = idp.stats.tokenExchanges
  const result = await exchange(BFF, TOKEN_EXCHANGE, {
    subject_token: subject,
    subject_token_type: AT,
    audience: LEDGER,
    scope: 'ledger.read',
  })
  t.equal(result.token_type, 'bearer')
  t.equal(result.issued_token_type, AT, 'RFC 8693 §2.2.1 issued_token_type')
  t.ok(typeof result.expires_in === 'number' && result.expires_in > 0)
  const seen = await idp.introspect(result.access_token)
  t.match(seen, { active: true, aud: LEDGER, sub: 'alice', scope: 'ledger.read', client_id: 'bff' })
  t.equal(idp.stats.tokenExchanges, before + 1)
  t.equal(idp.stats.byAudience[LEDGER], 1)
  const found = await idp.provider.AccessToken.find(result.access_token)
  t.equal(found?.extra?.act, undefined, 'no actor, no act claim')
})

t.test('with an actor token, the issued token says who acts (act, RFC 8693 §4.1)', async (t) => {
  // A client-credentials token: the client itself acts.
  const actor = await oauth.processClientCredentialsResponse(
    as,
    BFF,
    await oauth.clientCredentialsGrantRequest(as, BFF, auth, {}, insecure),
  )
  const result = await exchange(BFF, TOKEN_EXCHANGE, {
    subject_token: await subjectFor('bff'),
    subject_token_type: AT,
    resource: LEDGER,
    actor_token: actor.access_token,
    actor_token_type: AT,
  })
  const found = await idp.provider.AccessToken.find(result.access_token)
  t.same(found?.extra?.act, { sub: 'bff' }, 'the actor is the client that holds the actor token')
  t.equal(found?.aud, LEDGER)
  t.equal(found?.scope, 'ledger.read ledger.write', 'no scope asked: every scope of the audience')
})

t.test('the refusals a gateway must tell apart', async (t) => {
  const subject = await subjectFor('bff')
  const base = { subject_token: subject, subject_token_type: AT }
  t.equal(
    await refusal(exchange(BFF, TOKEN_EXCHANGE, { ...base, audience: 'https://unknown.example' })),
    'invalid_target',
  )
  t.equal(
    await refusal(exchange(BFF, TOKEN_EXCHANGE, { ...base, audience: LEDGER, scope: 'ledger.delete' })),
    'invalid_scope',
  )
  t.equal(
    await refusal(
      exchange(OTHER, TOKEN_EXCHANGE, {
        subject_token: await subjectFor('other'),
        subject_token_type: AT,
        audience: LEDGER,
      }),
    ),
    'unauthorized_client',
    'other may exchange for graph only',
  )
  t.equal(
    await refusal(exchange(OTHER, TOKEN_EXCHANGE, { ...base, audience: GRAPH })),
    'invalid_grant',
    "another client's token is not the other's to exchange",
  )
  t.equal(
    await refusal(
      exchange(BFF, TOKEN_EXCHANGE, { subject_token: 'nope', subject_token_type: AT, audience: LEDGER }),
    ),
    'invalid_grant',
    'a token the store does not hold',
  )
  t.equal(
    await refusal(exchange(BFF, TOKEN_EXCHANGE, { audience: LEDGER })),
    'invalid_request',
    'no subject token',
  )
})

t.test('on-behalf-of: jwt-bearer with requested_token_use, audience from the scope', async (t) => {
  const before = idp.stats.onBehalfOf
  const result = await exchange(BFF, JWT_BEARER, {
    assertion: await subjectFor('bff'),
    requested_token_use: 'on_behalf_of',
    scope: `${GRAPH}/.default`,
  })
  t.match(await idp.introspect(result.access_token), { active: true, aud: GRAPH, scope: 'user.read' })
  t.equal(idp.stats.onBehalfOf, before + 1)
  t.equal(
    await refusal(
      exchange(BFF, JWT_BEARER, { assertion: await subjectFor('bff'), scope: `${GRAPH}/.default` }),
    ),
    'invalid_request',
    'without requested_token_use=on_behalf_of',
  )
})

t.test(
  'a DPoP-bound subject is exchanged only with a proof of its key, and the new token is bound',
  async (t) => {
    const keys = await generateKeyPair('ES256', { extractable: true })
    const jkt = await calculateJwkThumbprint(await exportJWK(keys.publicKey))
    const subject = await subjectFor('bff', jkt)
    const params = { subject_token: subject, subject_token_type: AT, audience: LEDGER }
    t.equal(await refusal(exchange(BFF, TOKEN_EXCHANGE, params)), 'invalid_grant', 'no proof')
    const other = await generateKeyPair('ES256', { extractable: true })
    t.equal(
      await refusal(exchange(BFF, TOKEN_EXCHANGE, params, { DPoP: oauth.DPoP({}, other) })),
      'invalid_grant',
      'a proof of another key',
    )
    const result = await exchange(BFF, TOKEN_EXCHANGE, params, { DPoP: oauth.DPoP({}, keys) })
    t.equal(result.token_type, 'dpop')
    t.equal((await idp.provider.AccessToken.find(result.access_token))?.jkt, jkt, 'bound to the same key')
  },
)

t.test('without tokenExchange the grants do not exist', async (t) => {
  const plain = await startDevIdp({
    clients: [{ clientId: 'bff', clientSecret: SECRET, redirectUris: ['http://127.0.0.1/cb'] }],
  })
  t.teardown(() => plain.close())
  const plainIssuer = new URL(plain.issuer)
  const plainAs = await oauth.processDiscoveryResponse(
    plainIssuer,
    await oauth.discoveryRequest(plainIssuer, insecure),
  )
  const response = await oauth.genericTokenEndpointRequest(
    plainAs,
    BFF,
    auth,
    TOKEN_EXCHANGE,
    { subject_token: 'x', subject_token_type: AT },
    insecure,
  )
  t.equal(
    await refusal(oauth.processGenericTokenEndpointResponse(plainAs, BFF, response)),
    'unsupported_grant_type',
  )
})

/**
 * What an IdP quotes back of a request it refused never reaches the failure
 * (and so no log line): the HTTP Basic header the client secret went in,
 * however its id and secret were encoded before base64 (RFC 6749 §2.3.1),
 * a private_key_jwt client assertion (RFC 7523), a DPoP proof (RFC 9449),
 * the subject token of an exchange. The long ones were once kept out only
 * in part, by the 300-character cut of the description.
 */
import { generateKeyPairSync } from 'node:crypto'
import * as oauth from 'oauth4webapi'
import t from 'tap'
import type { MockPool } from 'undici'
import { generateDpopKey } from '../../src/dpop/keys.js'
import type { IdpFailure } from '../../src/oidc/translate.js'
import { audienceOf } from '../../src/tokens/audience.js'
import { CLIENT_ID, route } from '../helpers/gateway.js'
import { discoveredClient, ISSUER, JSON_HEADERS, metadata } from '../helpers/mock-idp.js'

interface Sent {
  readonly headers: Record<string, string>
  readonly body: URLSearchParams
}

/** Answers the next token call with `error`, its description quoting what `quote` takes of the request. */
function echoing(idp: MockPool, status: number, error: string, quote: (sent: Sent) => string): void {
  idp.intercept({ path: '/token', method: 'POST' }).reply((request) => {
    const headers = Object.fromEntries(
      Object.entries((request.headers ?? {}) as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]),
    )
    const sent = { headers, body: new URLSearchParams(String(request.body)) }
    return {
      statusCode: status,
      data: JSON.stringify({ error, error_description: quote(sent) }),
      responseOptions: { headers: JSON_HEADERS },
    }
  })
}

/** Every text of a failure a log line is made of. */
const logged = (failure: IdpFailure | undefined) =>
  `${failure?.oauthError} ${failure?.description} ${failure?.reason}`

const base64 = (text: string) => Buffer.from(text).toString('base64')

t.test('the Basic header an IdP echoes is redacted, however id and secret were encoded', async (t) => {
  // Characters each encoding treats otherwise: WHATWG form-encoding (what
  // the gateway sends) leaves - alone, oauth4webapi's escapes it, and both
  // escape the space, ~, ! and parentheses that the raw form keeps.
  const secret = 's3cret with!special~(chars)-0123'
  const { idp, oidc, failures } = await discoveredClient(t, { oidc: { clientSecret: secret } })
  const theirs = new Headers()
  await oauth.ClientSecretBasic(secret)(
    { issuer: ISSUER },
    { client_id: CLIENT_ID },
    new URLSearchParams(),
    theirs,
  )
  echoing(idp, 401, 'invalid_client', ({ headers }) =>
    [
      `sent ${headers.authorization}`,
      `oauth4webapi ${theirs.get('authorization')}`,
      `raw Basic ${base64(`${CLIENT_ID}:${secret}`)}`,
      `unpadded ${headers.authorization!.replace(/=+$/, '')}.`,
    ].join('; '),
  )
  await t.rejects(oidc.clientCredentials([]), { code: 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED' })
  t.equal(
    failures[0]?.description,
    'sent Basic [redacted]; oauth4webapi Basic [redacted]; raw Basic [redacted]; unpadded Basic [redacted].',
  )
  t.notMatch(logged(failures[0]), /s3cret|%21|%7E/i, 'nor the secret in any other form')
})

t.test('the secret echoed form-encoded the way oauth4webapi encodes it is redacted', async (t) => {
  const secret = 'my-bff-secret-0123456789'
  const { idp, oidc, failures } = await discoveredClient(t, { oidc: { clientSecret: secret } })
  echoing(idp, 401, 'invalid_client', () => `no client with secret my%2Dbff%2dsecret%2D0123456789`)
  await t.rejects(oidc.clientCredentials([]), { code: 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED' })
  t.equal(failures[0]?.description, 'no client with secret [redacted]')
})

t.test('a private_key_jwt client assertion the IdP echoes is redacted whole', async (t) => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const clientKey = { jwk: { ...privateKey.export({ format: 'jwk' }), alg: 'ES256', kid: 'k1' } }
  const { idp, oidc, failures } = await discoveredClient(t, {
    oidc: { clientAuth: 'private_key_jwt', clientSecret: undefined, clientKey },
  })
  let assertion = ''
  echoing(idp, 401, 'invalid_client', ({ body }) => {
    assertion = body.get('client_assertion')!
    return `assertion ${assertion} is not signed by a registered key`
  })
  await t.rejects(oidc.clientCredentials([]), { code: 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED' })
  t.match(assertion, /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWS was sent')
  t.equal(failures[0]?.description, 'assertion [redacted] is not signed by a registered key')
  t.notMatch(logged(failures[0]), 'eyJ')
})

t.test('a DPoP proof echoed in the description or the error code is redacted whole', async (t) => {
  const { idp, oidc, failures } = await discoveredClient(t, {
    oidc: { dpop: true },
    metadata: metadata({ dpop_signing_alg_values_supported: ['ES256'] }),
  })
  echoing(idp, 400, 'invalid_dpop_proof', ({ headers }) => `proof ${headers.dpop} has a bad htu`)
  await t.rejects(oidc.clientCredentials([], true), { code: 'GATEHOUSE_ERR_DPOP_PROOF_REFUSED' })
  echoing(idp, 400, 'proof eyJhbGciOiJFUzI1NiJ9.eyJodHUiOiJ4In0.c2ln refused', () => 'no')
  await t.rejects(oidc.clientCredentials([], true))
  t.equal(failures[0]?.description, 'proof [redacted] has a bad htu')
  t.equal(failures[1]?.oauthError, 'proof [redacted] refused')
  t.notMatch(failures.map(logged).join(' '), 'eyJ')
})

t.test('an exchange: the subject token and the DPoP proof it went with, echoed, are redacted', async (t) => {
  const { idp, oidc, failures } = await discoveredClient(t, { oidc: { dpop: true } })
  const audience = audienceOf({
    ...route('/x', 'http://x:1'),
    token: 'exchange',
    exchange: {
      subjectToken: 'access_token',
      audience: 'ledger-api',
      scopes: [],
      requestedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
      grant: 'token-exchange',
    },
    dpop: true,
  } as never)!
  const subject = 'at-the-session-holds-it-0123456789'
  echoing(
    idp,
    400,
    'invalid_grant',
    ({ body, headers }) => `subject ${body.get('subject_token')} with proof ${headers.dpop}`,
  )
  await t.rejects(oidc.exchange(subject, audience, await generateDpopKey('ES256')), {
    code: 'GATEHOUSE_ERR_TOKEN_EXCHANGE_REFUSED',
  })
  t.equal(failures[0]?.description, 'subject [redacted] with proof [redacted]')
})

/**
 * LemonLDAP::NG 2.16 writes an unsigned ID token or userinfo answer (`alg:
 * none`) as `header.payload`, without the final `.` of RFC 7519 §6.1:
 * oauth4webapi refuses it as "Invalid JWT", which every sign-in showed,
 * naming neither the token nor what to change. The answers here are data
 * given to oauth4webapi itself; test/interop/lemonldap.test.ts gets them
 * from LemonLDAP::NG.
 */
import * as oauth from 'oauth4webapi'
import t from 'tap'
import { explainedMessage } from '../../src/oidc/unexpected-alg.js'

const ISSUER = 'https://idp.example'
const as: oauth.AuthorizationServer = {
  issuer: ISSUER,
  token_endpoint: `${ISSUER}/token`,
  userinfo_endpoint: `${ISSUER}/userinfo`,
  id_token_signing_alg_values_supported: ['none', 'RS256'],
  userinfo_signing_alg_values_supported: ['none', 'RS256'],
}
const client: oauth.Client = { client_id: 'gatehouse' }
const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url')
const now = Math.floor(Date.now() / 1000)
const claims = { iss: ISSUER, sub: 'dwho', aud: 'gatehouse', iat: now, exp: now + 60 }

async function refusal(run: () => Promise<unknown>): Promise<Error> {
  try {
    await run()
  } catch (err) {
    return err as Error
  }
  throw new Error('oauth4webapi took the answer')
}

t.test('an ID token unsigned and in two parts names both, and what to change', async (t) => {
  const body = {
    access_token: 'at',
    token_type: 'bearer',
    id_token: `${part({ alg: 'none' })}.${part(claims)}`,
  }
  const err = await refusal(() =>
    oauth.processRefreshTokenResponse(
      as,
      client,
      new Response(JSON.stringify(body), { headers: { 'content-type': 'application/json' } }),
    ),
  )
  t.equal(err.message, 'Invalid JWT', "oauth4webapi's own words")
  const message = explainedMessage(err)
  t.match(message, 'the ID token is unsigned (alg "none") and in two parts')
  t.match(message, 'have the identity provider sign ID tokens (RS256)')
  t.notMatch(message, body.id_token, 'and never the token')
})

t.test('a userinfo answer unsigned and in two parts says userinfo', async (t) => {
  const jwt = `${part({ alg: 'none', typ: 'JWT' })}.${part({ sub: 'dwho', name: 'Doctor Who' })}`
  const err = await refusal(() =>
    oauth.processUserInfoResponse(
      as,
      client,
      'dwho',
      new Response(jwt, { headers: { 'content-type': 'application/jwt' } }),
    ),
  )
  t.match(explainedMessage(err, true), 'the userinfo answer is unsigned (alg "none") and in two parts')
})

t.test('any other JWT not in three parts gives the count', async (t) => {
  const body = { access_token: 'at', token_type: 'bearer', id_token: 'an-opaque-id-token' }
  const err = await refusal(() =>
    oauth.processRefreshTokenResponse(
      as,
      client,
      new Response(JSON.stringify(body), { headers: { 'content-type': 'application/json' } }),
    ),
  )
  t.equal(
    explainedMessage(err),
    'Invalid JWT: the ID token has 1 dot-separated part, where a signed JWT has three (RFC 7515 §7.1)',
  )
})

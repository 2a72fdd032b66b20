/**
 * What the OIDC client sends for an exchange and makes of the answers, at
 * the HTTP seam: the grant's parameters (RFC 8693 §2.1; Entra ID's
 * on-behalf-of), the token types a route may forward (RFC 8693 §2.2.1's
 * N_A and issued_token_type, RFC 9449 §5's binding), and the
 * classification, whose refusals all stay on the route and never name the
 * subject token.
 */
import t from 'tap'
import type { ExchangeConfig } from '../../src/config/types.js'
import { generateDpopKey } from '../../src/dpop/keys.js'
import { exchangeAnswerRefusal, TOKEN_EXCHANGE_GRANT } from '../../src/oidc/exchange.js'
import { audienceOf } from '../../src/tokens/audience.js'
import type { TokenAudience } from '../../src/types.js'
import { route } from '../helpers/gateway.js'
import { discoveredClient, tokenAnswer } from '../helpers/mock-idp.js'

const SUBJECT = 'at-the-session-holds-it-0123456789'

function exchangeAudience(exchange: ExchangeConfig): TokenAudience {
  return audienceOf({ ...route('/x', 'http://x:1'), token: 'exchange', exchange, dpop: false } as never)!
}

const ledger = exchangeAudience({
  subjectToken: 'access_token',
  audience: 'ledger-api',
  resource: 'https://ledger.example',
  scopes: ['ledger.read', 'ledger.write'],
  requestedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
  grant: 'token-exchange',
})

t.test('token-exchange: RFC 8693 §2.1 parameters, client authentication, a bearer answer', async (t) => {
  const { idp, oidc, accepted } = await discoveredClient(t)
  const sent = tokenAnswer(idp, 200, { access_token: 'ledger-at', token_type: 'Bearer', expires_in: 300 })
  const token = await oidc.exchange(SUBJECT, ledger)
  t.equal(token.accessToken, 'ledger-at')
  t.ok(token.accessTokenExpiresAt > Date.now() + 290_000)
  const { body, headers } = await sent
  t.same(Object.fromEntries(body), {
    grant_type: TOKEN_EXCHANGE_GRANT,
    subject_token: SUBJECT,
    subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    audience: 'ledger-api',
    resource: 'https://ledger.example',
    scope: 'ledger.read ledger.write',
  })
  t.match(headers.authorization, /^Basic /, 'client_secret_basic, as every token request')
  t.same(accepted, ['token_exchange'])
})

t.test('jwt-bearer: the on-behalf-of request of Entra ID', async (t) => {
  const { idp, oidc } = await discoveredClient(t)
  const sent = tokenAnswer(idp, 200, { access_token: 'graph-at', token_type: 'Bearer', expires_in: 3600 })
  await oidc.exchange(
    'id-token-subject',
    exchangeAudience({ subjectToken: 'id_token', scopes: ['api://graph/.default'], grant: 'jwt-bearer' }),
  )
  t.same(Object.fromEntries((await sent).body), {
    grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
    assertion: 'id-token-subject',
    requested_token_use: 'on_behalf_of',
    scope: 'api://graph/.default',
  })
})

t.test(
  'token_type N_A says the token is no access token (RFC 8693 §2.2.1): not forwarded as one',
  async (t) => {
    for (const issued of [
      'urn:ietf:params:oauth:token-type:jwt',
      'urn:ietf:params:oauth:token-type:access_token',
      undefined,
    ]) {
      const { idp, oidc, failures } = await discoveredClient(t)
      void tokenAnswer(idp, 200, {
        access_token: 'not-an-access-token',
        ...(issued ? { issued_token_type: issued } : {}),
        token_type: 'N_A',
        expires_in: 60,
      })
      const refused = await oidc.exchange(SUBJECT, ledger).then(
        () => undefined,
        (err: Error) => err,
      )
      t.match(
        refused,
        { code: 'GATEHOUSE_ERR_TOKEN_EXCHANGE_WRONG_TOKEN_TYPE', statusCode: 502, message: /token_type N_A/ },
        `issued ${issued ?? 'no type'}: refused`,
      )
      t.notMatch(refused?.message, /not-an-access-token|at-the-session/, 'no token in the message')
      t.same(failures, [], 'the IdP answered; no failure of it to count')
    }
  },
)

t.test('with a DPoP proof, N_A is refused like Bearer: the token is not bound (RFC 9449 §5)', async (t) => {
  const { idp, oidc } = await discoveredClient(t, { oidc: { dpop: true } })
  const bound = audienceOf({
    ...route('/x', 'http://x:1'),
    token: 'exchange',
    exchange: ledger.exchange,
    dpop: true,
  } as never)!
  for (const [type, why] of [
    ['N_A', /token_type N_A, to a request with a DPoP proof/],
    ['Bearer', /token_type Bearer, to a request with a DPoP proof: the identity provider ignored the proof/],
  ] as const) {
    void tokenAnswer(idp, 200, { access_token: 'unbound-token', token_type: type, expires_in: 300 })
    await t.rejects(
      oidc.exchange(SUBJECT, bound, await generateDpopKey('ES256')),
      { code: 'GATEHOUSE_ERR_TOKEN_EXCHANGE_WRONG_TOKEN_TYPE', statusCode: 502, message: why },
      `${type}: refused, saying why`,
    )
  }
  void tokenAnswer(idp, 200, { access_token: 'bound-token', token_type: 'DPoP', expires_in: 300 })
  t.equal((await oidc.exchange(SUBJECT, bound, await generateDpopKey('ES256'))).accessToken, 'bound-token')
})

t.test('a refresh_token in an exchange answer is not taken (RFC 8693 §2.2.1 allows one)', async (t) => {
  const { idp, oidc } = await discoveredClient(t)
  void tokenAnswer(idp, 200, {
    access_token: 'ledger-at',
    issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    token_type: 'Bearer',
    expires_in: 300,
    refresh_token: 'exchanged-refresh-token',
  })
  const token = await oidc.exchange(SUBJECT, ledger)
  t.equal(token.accessToken, 'ledger-at')
  t.notMatch(JSON.stringify(token), /exchanged-refresh-token/, 'nothing of it in what is stored')
})

t.test('every definitive refusal stays on the route; the subject token is never echoed', async (t) => {
  for (const error of [
    'invalid_target',
    'invalid_scope',
    'unauthorized_client',
    'invalid_grant',
    'invalid_request',
  ]) {
    const { idp, oidc, failures } = await discoveredClient(t)
    void tokenAnswer(idp, 400, { error, error_description: `cannot exchange ${SUBJECT}` })
    await t.rejects(oidc.exchange(SUBJECT, ledger), {
      code: 'GATEHOUSE_ERR_TOKEN_EXCHANGE_REFUSED',
      statusCode: 403,
    })
    t.match(failures[0], { operation: 'token_exchange', answer: error, verdict: 'route_refused' })
    t.equal(failures[0]?.description, 'cannot exchange [redacted]', `${error}: redacted`)
  }
})

t.test('invalid_client is the gateway’s credentials, a 503 is unavailable', async (t) => {
  const refused = await discoveredClient(t)
  void tokenAnswer(refused.idp, 401, { error: 'invalid_client' })
  await t.rejects(refused.oidc.exchange(SUBJECT, ledger), { code: 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED' })
  const down = await discoveredClient(t)
  void tokenAnswer(down.idp, 503, 'down')
  await t.rejects(down.oidc.exchange(SUBJECT, ledger), {
    code: 'GATEHOUSE_ERR_TOKEN_EXCHANGE_UNAVAILABLE',
    statusCode: 503,
  })
})

t.test('issued_token_type: what a route may forward (RFC 8693 §2.2.1, §3)', async (t) => {
  const type = (name: string) => `urn:ietf:params:oauth:token-type:${name}`
  const route = (requestedTokenType?: string): ExchangeConfig => ({
    subjectToken: 'access_token',
    scopes: [],
    grant: 'token-exchange',
    ...(requestedTokenType ? { requestedTokenType } : {}),
  })
  const forwarded: [asked: string | undefined, issued: string | undefined][] = [
    [undefined, undefined],
    [undefined, type('access_token')],
    [undefined, type('jwt')],
    [undefined, 'urn:example:token-type:house'],
    [type('access_token'), type('jwt')],
    [type('jwt'), type('access_token')],
    [type('saml2'), type('saml2')],
    [type('saml2'), undefined],
  ]
  const answer = (issued: string | undefined, token_type = 'bearer') => ({
    access_token: 'issued-for-the-route',
    token_type,
    ...(issued === undefined ? {} : { issued_token_type: issued }),
  })
  for (const [asked, issued] of forwarded)
    t.equal(
      exchangeAnswerRefusal(route(asked), answer(issued), false, SUBJECT),
      undefined,
      `asked ${asked}, issued ${issued}: forwarded`,
    )
  const refused: [asked: string | undefined, issued: string][] = [
    [undefined, type('id_token')],
    [undefined, type('refresh_token')],
    [undefined, type('saml2')],
    [type('access_token'), type('id_token')],
    [type('access_token'), 'urn:example:token-type:house'],
    [type('saml2'), type('access_token')],
  ]
  for (const [asked, issued] of refused)
    t.match(
      exchangeAnswerRefusal(route(asked), answer(issued), false, SUBJECT),
      { code: 'GATEHOUSE_ERR_TOKEN_EXCHANGE_WRONG_TOKEN_TYPE', statusCode: 502 },
      `asked ${asked}, issued ${issued}: refused`,
    )
  const obo: ExchangeConfig = { subjectToken: 'id_token', scopes: [], grant: 'jwt-bearer' }
  t.equal(
    exchangeAnswerRefusal(obo, answer(type('id_token')), false, SUBJECT),
    undefined,
    'on-behalf-of has no such member to check',
  )
  t.match(
    exchangeAnswerRefusal(obo, answer(undefined, 'n_a'), false, SUBJECT),
    { statusCode: 502 },
    'but N_A is no access token',
  )
  // A route that asks for another type than an access token takes what §2.2.1 says comes with it.
  t.equal(
    exchangeAnswerRefusal(route(type('saml2')), answer(type('saml2'), 'n_a'), false, SUBJECT),
    undefined,
  )
  t.match(exchangeAnswerRefusal(route(type('saml2')), answer(type('saml2'), 'n_a'), true, SUBJECT), {
    statusCode: 502,
  })
  // The binding, both ways (RFC 9449 §5).
  t.equal(
    exchangeAnswerRefusal(route(), answer(undefined, 'dpop'), true, SUBJECT),
    undefined,
    'DPoP to a proof',
  )
  t.match(
    exchangeAnswerRefusal(route(), answer(undefined, 'dpop'), false, SUBJECT),
    { statusCode: 502 },
    'DPoP to none',
  )
  t.match(
    exchangeAnswerRefusal(route(), answer(undefined, 'bearer'), true, SUBJECT),
    { statusCode: 502 },
    'Bearer to a proof',
  )
  t.match(
    exchangeAnswerRefusal(
      route(),
      { ...answer(type('access_token')), access_token: SUBJECT },
      false,
      SUBJECT,
    ),
    { statusCode: 502, message: /the token it was given to exchange \(the session's access token\)/ },
    'the subject token given back, of any type',
  )
})

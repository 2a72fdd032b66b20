/**
 * Discovery at the HTTP seam: what a failed discovery becomes (a 503 the
 * operator can read), what a good one enables, and the retry loop that
 * keeps trying until the IdP answers (discovery.ts), with its log lines.
 * The retry test against a real IdP that starts late is discovery-retry.test.ts.
 */
import type { FastifyBaseLogger } from 'fastify'
import t, { type Test } from 'tap'
import type { MockAgent } from 'undici'
import { OidcClient } from '../../src/oidc/client.js'
import { discoverWithRetry } from '../../src/oidc/discovery.js'
import { idpFailureOf } from '../../src/oidc/translate.js'
import { testConfig } from '../helpers/gateway.js'
import { ISSUER, JSON_HEADERS, metadata, mockAgent } from '../helpers/mock-idp.js'

const DISCOVERY = { path: '/.well-known/openid-configuration', method: 'GET' } as const

function client(t: Test, agent: MockAgent, extra: Parameters<typeof testConfig>[0]['oidc'] = {}) {
  const oidc = new OidcClient(
    testConfig({ port: 8080, issuer: ISSUER, routes: [], oidc: extra }),
    Date.now,
    {},
    agent,
  )
  t.teardown(() => oidc.close())
  return oidc
}

const refusals: [string, (pool: ReturnType<MockAgent['get']>) => void, RegExp][] = [
  ['a 404', (idp) => idp.intercept(DISCOVERY).reply(404, 'no such page'), /HTTP 404|404/],
  ['a 502 from a proxy', (idp) => idp.intercept(DISCOVERY).reply(502, '<html/>'), /HTTP 502/],
  [
    'a document for another issuer (OIDC Discovery §4.3)',
    (idp) =>
      idp
        .intercept(DISCOVERY)
        .reply(200, metadata({ issuer: 'https://evil.test' }), { headers: JSON_HEADERS }),
    /issuer/,
  ],
  // Refused by Node's URL parser as "Invalid URL", which named neither the member nor the value.
  [
    'an issuer that is a relative URL',
    (idp) => idp.intercept(DISCOVERY).reply(200, metadata({ issuer: '/' }), { headers: JSON_HEADERS }),
    /^the identity provider advertises issuer "\/", which is not an absolute URL, but oidc\.issuer is "https:\/\/idp\.test"/,
  ],
  [
    'an issuer without a scheme',
    (idp) => idp.intercept(DISCOVERY).reply(200, metadata({ issuer: 'idp.test' }), { headers: JSON_HEADERS }),
    /advertises issuer "idp\.test", which is not an absolute URL/,
  ],
  [
    'an issuer that is a number',
    (idp) => idp.intercept(DISCOVERY).reply(200, metadata({ issuer: 42 }), { headers: JSON_HEADERS }),
    /"issuer" property must be a string/,
  ],
  [
    'a body that is not JSON',
    (idp) => idp.intercept(DISCOVERY).reply(200, 'not json', { headers: JSON_HEADERS }),
    /JSON|parse/i,
  ],
  [
    'a dropped connection',
    (idp) =>
      idp
        .intercept(DISCOVERY)
        .replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })),
    /ECONNRESET/,
  ],
]

for (const [name, arrange, reason] of refusals) {
  t.test(`discovery refused by ${name}: 503 idp_unavailable, nothing discovered`, async (t) => {
    const { agent, idp } = mockAgent(t)
    const oidc = client(t, agent)
    arrange(idp)
    const err = await oidc.discover().then(
      () => t.fail('discovered'),
      (e: unknown) => e,
    )
    t.match(err, { code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE', statusCode: 503 })
    t.match(idpFailureOf(err), { operation: 'discovery', verdict: 'unavailable', reason })
    t.equal(oidc.discovered, false)
    t.equal(oidc.metadata, undefined)
  })
}

t.test(
  'an issuer mismatch names both issuers: the advertised one bounded and on one line, the configured one',
  async (t) => {
    const { agent, idp } = mockAgent(t)
    // The common mistake: a trailing slash one side has and the other has not.
    const realm = `${ISSUER}/realms/demo`
    const oidc = new OidcClient(testConfig({ port: 8080, issuer: realm, routes: [] }), Date.now, {}, agent)
    t.teardown(() => oidc.close())
    idp
      .intercept({ path: '/realms/demo/.well-known/openid-configuration', method: 'GET' })
      .reply(200, metadata({ issuer: `${realm}/` }), { headers: JSON_HEADERS })
    const err = await oidc.discover().then(
      () => t.fail('discovered'),
      (e: unknown) => e,
    )
    t.match(err, { code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE' })
    t.equal(
      idpFailureOf(err)?.reason,
      `the identity provider advertises issuer "${realm}/" but oidc.issuer is "${realm}" (only the trailing slash differs): they must be identical (OpenID Connect Discovery 1.0 §4.3); set oidc.issuer to the advertised value if this is the provider you mean`,
    )

    // The advertised value is the IdP's text: no control, bidi or line-breaking character, and bounded.
    const other = client(t, agent)
    const hostile = `https://evil.test/\u001b[2J\u202eevil\u2028${'a'.repeat(500)}`
    idp.intercept(DISCOVERY).reply(200, metadata({ issuer: hostile }), { headers: JSON_HEADERS })
    // What the operator reads: the discovery log line's reason.
    const logged = new Promise<Record<string, unknown>>((resolve) => {
      const log = { info() {}, error: (obj: Record<string, unknown>) => resolve(obj) }
      const discovery = discoverWithRetry(other, log as unknown as FastifyBaseLogger, {
        initialDelay: 60_000,
      })
      t.teardown(() => discovery.stop())
    })
    const reason = String((await logged).reason)
    t.match(
      reason,
      /^the identity provider advertises issuer "https:\/\/evil\.test\/ \[2J evil a+…" but oidc\.issuer is "https:\/\/idp\.test"/,
    )
    t.notMatch(reason, /[\p{Cc}\p{Cf}\p{Zl}]/u)
    t.ok(reason.length < 500, 'bounded')
  },
)

t.test('a discovered IdP: metadata, the logout request, and what PAR needs', async (t) => {
  const { agent, idp } = mockAgent(t)
  const oidc = client(t, agent, { par: 'required' })
  idp.intercept(DISCOVERY).reply(200, metadata(), { headers: JSON_HEADERS })
  await oidc.discover()
  t.equal(oidc.discovered, true)
  t.equal(oidc.metadata?.token_endpoint, `${ISSUER}/token`)
  t.match(oidc.incompatibility, /par: required.*pushed_authorization_request_endpoint/)
  await t.rejects(oidc.authorizationUrl('/'), { code: 'GATEHOUSE_ERR_IDP_INCOMPATIBLE' })
  const logout = oidc.endSessionRequest(undefined, 'user@example')
  t.equal(logout?.endpoint.href, `${ISSUER}/logout`)
  t.equal(logout?.params.get('logout_hint'), 'user@example', 'RP-Initiated Logout §2, without an ID token')
  t.equal(logout?.params.get('client_id'), oidc.clientId)
  t.equal(oidc.endSessionRequest('id-token', 'user')?.params.get('id_token_hint'), 'id-token')
  t.notOk(oidc.endSessionRequest('id-token', 'user')?.params.has('logout_hint'))
})

t.test('PAR (RFC 9126): the parameters go over the back channel, the URL carries request_uri', async (t) => {
  const { agent, idp } = mockAgent(t)
  const oidc = client(t, agent)
  idp.intercept(DISCOVERY).reply(200, metadata({ pushed_authorization_request_endpoint: `${ISSUER}/par` }), {
    headers: JSON_HEADERS,
  })
  await oidc.discover()
  let pushed: URLSearchParams | undefined
  idp.intercept({ path: '/par', method: 'POST' }).reply((request) => {
    pushed = new URLSearchParams(String(request.body))
    return {
      statusCode: 201,
      data: JSON.stringify({ request_uri: 'urn:ietf:params:oauth:request_uri:abc', expires_in: 60 }),
      responseOptions: { headers: JSON_HEADERS },
    }
  })
  const { url, state } = await oidc.authorizationUrl('/after', { ui_locales: 'fr' })
  t.same([...url.searchParams.keys()].sort(), ['client_id', 'request_uri'])
  t.equal(url.searchParams.get('request_uri'), 'urn:ietf:params:oauth:request_uri:abc')
  t.equal(pushed?.get('state'), state.state)
  t.equal(pushed?.get('code_challenge_method'), 'S256')
  t.equal(pushed?.get('ui_locales'), 'fr')

  idp
    .intercept({ path: '/par', method: 'POST' })
    .reply(400, { error: 'invalid_request' }, { headers: JSON_HEADERS })
  await t.rejects(oidc.authorizationUrl('/'), {
    code: 'GATEHOUSE_ERR_LOGIN_FAILED',
    message: /invalid_request/,
  })
})

/** A logger that keeps what it is told. */
function recordingLog() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = []
  const at = (level: string) => (obj: Record<string, unknown>, msg: string) => lines.push({ level, obj, msg })
  return { lines, log: { info: at('info'), error: at('error') } as unknown as FastifyBaseLogger }
}

/** `discoverWithRetry` run until `oidc` is discovered, from 1 ms doubling to 2 ms; what it logged. */
async function discoveredWithRetry(t: Test, oidc: OidcClient) {
  const { lines, log } = recordingLog()
  // The retry timer is unref'd, as a gateway's listener keeps its process up: here, this does.
  const alive = setInterval(() => {}, 60_000)
  t.teardown(() => clearInterval(alive))
  const discovery = discoverWithRetry(oidc, log, { initialDelay: 1, maxDelay: 2 })
  t.teardown(() => discovery.stop())
  await discovery.ready
  return lines
}

t.test('discoverWithRetry: fails, logs where and why, retries with backoff, then is ready', async (t) => {
  const { agent, idp } = mockAgent(t)
  const oidc = client(t, agent)
  idp.intercept(DISCOVERY).reply(503, 'starting')
  idp.intercept(DISCOVERY).reply(503, 'starting')
  idp.intercept(DISCOVERY).reply(200, metadata({ revocation_endpoint: undefined }), { headers: JSON_HEADERS })
  const lines = await discoveredWithRetry(t, oidc)
  t.equal(oidc.discovered, true)
  t.same(
    lines.map((l) => [l.level, l.obj.retryInMs ?? null]),
    [
      ['error', 1],
      ['error', 2],
      ['info', null],
      ['info', null],
    ],
    'doubling, capped at maxDelay',
  )
  t.equal(lines[0]?.obj.url, `${ISSUER}/.well-known/openid-configuration`)
  t.match(lines[3]?.msg, /no revocation_endpoint \(RFC 7009\)/, 'says what logout cannot do')
})

t.test("discoverWithRetry waits as long as the IdP's Retry-After asks, when that is longer", async (t) => {
  const { agent, idp } = mockAgent(t)
  const oidc = client(t, agent)
  // RFC 9110 §10.2.3: an IdP starting up or shedding load says when to come back.
  idp.intercept(DISCOVERY).reply(503, 'starting', { headers: { 'retry-after': '1' } })
  idp.intercept(DISCOVERY).reply(503, 'starting')
  idp.intercept(DISCOVERY).reply(200, metadata(), { headers: JSON_HEADERS })
  const lines = await discoveredWithRetry(t, oidc)
  t.same(
    lines.filter((l) => l.level === 'error').map((l) => l.obj.retryInMs),
    [1_000, 2],
    "the IdP's second, then the backoff's own delay again",
  )
})

/**
 * Back-Channel Logout 1.0 §2.6 logout-token validation (logout-token.ts),
 * with the issuer's JWKS served by undici's MockAgent as the global
 * dispatcher (jose fetches it with Node's fetch): every claim the spec
 * requires, each one missing or wrong, an ID token passed off as a logout
 * token, an old token on a fake clock, and a key rotated at the IdP.
 */
import { CompactSign, exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose'
import t, { type Test } from 'tap'
import { getGlobalDispatcher, setGlobalDispatcher } from 'undici'
import { LogoutTokenVerifier } from '../../src/oidc/logout-token.js'
import { ISSUER, JSON_HEADERS, mockAgent } from '../helpers/mock-idp.js'

const CLIENT = 'gatehouse-test'
const NOW = 1_800_000_000
const EVENT_URI = 'http://schemas.openid.net/event/backchannel-logout'
const EVENT = { [EVENT_URI]: {} }

async function keyOf(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } }
}
type Key = Awaited<ReturnType<typeof keyOf>>

function sign(key: Key, claims: JWTPayload, typ: string | undefined = 'logout+jwt') {
  return new SignJWT({
    iss: ISSUER,
    aud: CLIENT,
    iat: NOW,
    jti: `jti-${Math.random()}`,
    events: EVENT,
    ...claims,
  })
    .setProtectedHeader({ alg: 'ES256', kid: key.kid, ...(typ ? { typ } : {}) })
    .sign(key.privateKey)
}

/** A verifier whose JWKS the MockAgent serves, once per entry of `jwks`; a number answers that status. */
function verifier(t: Test, jwks: (Key[] | number)[]) {
  const { agent, idp } = mockAgent(t)
  const previous = getGlobalDispatcher()
  setGlobalDispatcher(agent)
  t.teardown(() => setGlobalDispatcher(previous))
  for (const keys of jwks) {
    const jwks = idp.intercept({ path: '/jwks', method: 'GET' })
    if (typeof keys === 'number') jwks.reply(keys, 'unavailable')
    else jwks.reply(200, { keys: keys.map((k) => k.jwk) }, { headers: JSON_HEADERS })
  }
  return new LogoutTokenVerifier({
    jwksUri: `${ISSUER}/jwks`,
    issuer: ISSUER,
    clientId: CLIENT,
    now: () => NOW * 1000,
  })
}

t.test('a valid logout token gives its jti, iat, sub and sid', async (t) => {
  const key = await keyOf('k1')
  const v = verifier(t, [[key]])
  const claims = await v.verify(await sign(key, { sub: 'user-1', sid: 'sid-1', jti: 'j1' }))
  t.same(claims, { jti: 'j1', iat: NOW, sub: 'user-1', sid: 'sid-1' })
  t.same(
    await v.verify(await sign(key, { sid: 'only-sid', jti: 'j2' }, undefined)),
    {
      jti: 'j2',
      iat: NOW,
      sub: undefined,
      sid: 'only-sid',
    },
    'typ may be absent; sid alone names the session',
  )
  t.match(await v.verify(await sign(key, { sub: 'u' }, 'application/logout+jwt')), { sub: 'u' })
})

const refused: [string, JWTPayload, string | undefined, RegExp][] = [
  ['no events claim', { sub: 'u', events: undefined } as unknown as JWTPayload, 'logout+jwt', /events claim/],
  ['another event', { sub: 'u', events: { 'urn:other': {} } }, 'logout+jwt', /events claim/],
  // §2.4: the event's member is a JSON object; these passed as one (typeof null and [] is 'object').
  ['the event as null', { sub: 'u', events: { [EVENT_URI]: null } }, 'logout+jwt', /events claim/],
  ['the event as a list', { sub: 'u', events: { [EVENT_URI]: [] } }, 'logout+jwt', /events claim/],
  ['a nonce (§2.4)', { sub: 'u', nonce: 'n' }, 'logout+jwt', /must not carry a nonce/],
  // An empty jti passed, and made every such token of the issuer one to the replay check.
  ['an empty jti', { sub: 'u', jti: '' }, 'logout+jwt', /: jti is not a non-empty string\.$/],
  [
    'a jti that is no string',
    { sub: 'u', jti: 7 } as unknown as JWTPayload,
    'logout+jwt',
    /: jti is not a non-empty string\.$/,
  ],
  // A sub of another type was read past, and the token taken by its sid.
  [
    'a sub that is no string',
    { sub: 7, sid: 's' } as unknown as JWTPayload,
    'logout+jwt',
    /: sub and sid must be strings\.$/,
  ],
  [
    'a sid that is no string',
    { sub: 'u', sid: {} } as unknown as JWTPayload,
    'logout+jwt',
    /: sub and sid must be strings\.$/,
  ],
  ['neither sub nor sid', {}, 'logout+jwt', /neither sub nor sid/],
  ['another audience', { sub: 'u', aud: 'someone-else' }, 'logout+jwt', /: aud claim check failed\.$/],
  ['another issuer', { sub: 'u', iss: 'https://evil.test' }, 'logout+jwt', /: iss claim check failed\.$/],
  ['no jti', { sub: 'u', jti: undefined } as unknown as JWTPayload, 'logout+jwt', /: jti claim missing\.$/],
  ['issued too long ago', { sub: 'u', iat: NOW - 600 }, 'logout+jwt', /: iat: the token is too old\.$/],
  [
    'issued in the future',
    { sub: 'u', iat: NOW + 600 },
    'logout+jwt',
    /: iat: the token is issued in the future\.$/,
  ],
  ['expired', { sub: 'u', exp: NOW - 600 }, 'logout+jwt', /: exp: the token has expired\.$/],
]

for (const [name, claims, typ, reason] of refused) {
  t.test(`refused: ${name}`, async (t) => {
    const key = await keyOf('k1')
    const v = verifier(t, [[key]])
    await t.rejects(v.verify(await sign(key, claims, typ)), {
      code: 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN',
      message: reason,
    })
  })
}

t.test('a token signed by a key the IdP does not publish is refused', async (t) => {
  const published = await keyOf('k1')
  const forged = await keyOf('k1')
  const v = verifier(t, [[published]])
  await t.rejects(v.verify(await sign(forged, { sub: 'u' })), {
    code: 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN',
    message: /: the signature does not verify against the issuer's key\.$/,
  })
})

t.test(
  'typ JWT, as OPs that predate logout+jwt write it, is taken as no type (§2.4 only recommends one)',
  async (t) => {
    const key = await keyOf('k1')
    const v = verifier(t, [[key]])
    t.match(await v.verify(await sign(key, { sub: 'u', jti: 'j1' }, 'JWT')), { jti: 'j1', sub: 'u' })
    t.match(await v.verify(await sign(key, { sub: 'u', jti: 'j2' }, 'application/jwt')), { jti: 'j2' })
  },
)

t.test('an ID token typed JWT is still refused: no logout event, or a nonce (§2.6, §4.1)', async (t) => {
  const key = await keyOf('k1')
  const v = verifier(t, [[key]])
  const idToken = { sub: 'u', events: undefined, nonce: 'n' } as unknown as JWTPayload
  await t.rejects(v.verify(await sign(key, idToken, 'JWT')), {
    code: 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN',
    message: /events claim/,
  })
  await t.rejects(v.verify(await sign(key, { sub: 'u', nonce: 'n' }, 'JWT')), {
    message: /must not carry a nonce/,
  })
})

t.test('any other explicit typ (an access token, at+jwt) is refused before any key is fetched', async (t) => {
  const key = await keyOf('k1')
  // No JWKS answer is set up: a fetch would fail the test at teardown.
  const v = verifier(t, [])
  await t.rejects(v.verify(await sign(key, { sub: 'u' }, 'at+jwt')), {
    code: 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN',
    message: /unexpected typ at\+jwt/,
  })
})

t.test(
  'a typ of the sender’s choosing is not echoed: the refusal is ours, never the token’s contents',
  async (t) => {
    const key = await keyOf('k1')
    const v = verifier(t, [])
    for (const typ of ['x'.repeat(12_000), 'a\nb [object Object]']) {
      const refused = await v.verify(await sign(key, { sub: 'u' }, typ)).then(
        () => undefined,
        (err: Error) => err,
      )
      t.match(refused, { code: 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN', message: /unexpected typ/ })
      t.ok(refused!.message.length < 200, `a short message (${refused!.message.length} characters)`)
      t.notMatch(refused!.message, /xxxxxxxxxx|\n|object Object/, 'none of the typ in it')
    }
  },
)

t.test(
  'a crit header of the sender’s choosing is not echoed: jose’s message, which quotes it, never reaches the refusal',
  async (t) => {
    const key = await keyOf('k1')
    // jose checks crit before it fetches a key or looks at the signature: no JWKS answer is set up.
    const v = verifier(t, [])
    const junk = `${'x'.repeat(11_000)}\u001b[31mINJECTED\n[object Object]`
    const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
    const payload = { iss: ISSUER, aud: CLIENT, iat: NOW, jti: 'j', sub: 'u', events: EVENT }
    const token = [
      part({ alg: 'ES256', kid: key.kid, typ: 'logout+jwt', crit: [junk] }),
      part(payload),
      Buffer.from('not a signature').toString('base64url'),
    ].join('.')
    const refused = await v.verify(token).then(
      () => undefined,
      (err: Error) => err,
    )
    t.match(refused, {
      code: 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN',
      message: 'The logout token is not valid: unknown critical header (crit).',
    })
    t.ok(refused!.message.length < 200, `a short message (${refused!.message.length} characters)`)
    t.notMatch(refused!.message, /xxxxxxxxxx|INJECTED|\p{Cc}|object Object/u, 'none of the header in it')
  },
)

t.test('each refusal of jose’s is named in the gateway’s words', async (t) => {
  const key = await keyOf('k1')
  const cases: [string, (Key[] | number)[], string | Promise<string>, string][] = [
    ['a kid the JWKS lacks', [[await keyOf('k2')]], sign(key, { sub: 'u' }), "no key in the issuer's JWKS"],
    [
      'a signed payload that is no claims set',
      [[key]],
      new CompactSign(new TextEncoder().encode('not json'))
        .setProtectedHeader({ alg: 'ES256', kid: key.kid })
        .sign(key.privateKey),
      'its payload is not a JWT claims set',
    ],
    ['three parts that are no JWT', [], 'a.b.c', 'it is not a JWT'],
  ]
  for (const [name, jwks, token, reason] of cases) {
    await t.rejects(
      verifier(t, jwks).verify(await token),
      {
        code: 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN',
        message: `The logout token is not valid: ${reason}`,
      },
      name,
    )
  }
})

t.test('a second token with a known key fetches the JWKS no more', async (t) => {
  const key = await keyOf('k1')
  const v = verifier(t, [[key]])
  t.match(await v.verify(await sign(key, { sub: 'u' })), { sub: 'u' })
  t.match(await v.verify(await sign(key, { sub: 'v' })), { sub: 'v' }, 'one JWKS answer served both')
})

t.test(
  'a token the JWKS cannot check now is a 503 to send again, not a refusal the IdP takes as final',
  async (t) => {
    const key = await keyOf('k1')
    await t.rejects(verifier(t, [503]).verify(await sign(key, { sub: 'u' })), {
      code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE',
      message: /could not be checked: the issuer's JWKS could not be fetched/,
    })
    const { agent, idp } = mockAgent(t)
    const previous = getGlobalDispatcher()
    setGlobalDispatcher(agent)
    t.teardown(() => setGlobalDispatcher(previous))
    idp.intercept({ path: '/jwks', method: 'GET' }).replyWithError(new Error('connection refused'))
    const unreachable = new LogoutTokenVerifier({
      jwksUri: `${ISSUER}/jwks`,
      issuer: ISSUER,
      clientId: CLIENT,
    })
    await t.rejects(unreachable.verify(await sign(key, { sub: 'u', iat: Math.floor(Date.now() / 1000) })), {
      code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE',
    })
  },
)

t.test(
  'a kid the IdP has just rotated in, while jose may not fetch the JWKS again, is a 503 with its wait',
  async (t) => {
    const old = await keyOf('k1')
    const rotated = await keyOf('k2')
    // One answer only: the JWKS of before the rotation.
    const v = verifier(t, [[old]])
    t.match(
      await v.verify(await sign(old, { sub: 'u' })),
      { sub: 'u' },
      'the JWKS is fetched, and now cooling down',
    )
    const refused = await v.verify(await sign(rotated, { sub: 'u' })).then(
      () => undefined,
      (err: Error & { retryAfter?: number }) => err,
    )
    t.match(refused, {
      code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE',
      message: /fetched too recently to fetch again/,
    })
    t.equal(refused?.retryAfter, 30, "the IdP is asked to wait out jose's cooldown")
    await t.rejects(
      verifier(t, [[old]]).verify(await sign(rotated, { sub: 'u' })),
      { code: 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN', message: /no key in the issuer's JWKS matches/ },
      'a JWKS fetched for the token itself that lacks its kid is the answer: refused',
    )
  },
)

t.test(
  'a kid missing from a JWKS whose fetch began before the token came is a 503 too: that JWKS may predate the key',
  async (t) => {
    const old = await keyOf('k1')
    const rotated = await keyOf('k2')
    const { agent, idp } = mockAgent(t)
    const previous = getGlobalDispatcher()
    setGlobalDispatcher(agent)
    t.teardown(() => setGlobalDispatcher(previous))
    let fetchBegan: () => void = () => {}
    const began = new Promise<void>((resolve) => {
      fetchBegan = resolve
    })
    // A slow IdP: the JWKS of before the rotation is still on its way when the new key's token comes.
    // Not a race: that token comes in the microtasks after `began`, which no timer overtakes.
    idp
      .intercept({ path: '/jwks', method: 'GET' })
      .reply(() => {
        fetchBegan()
        return { statusCode: 200, data: { keys: [old.jwk] }, responseOptions: { headers: JSON_HEADERS } }
      })
      .delay(200)
    const v = new LogoutTokenVerifier({
      jwksUri: `${ISSUER}/jwks`,
      issuer: ISSUER,
      clientId: CLIENT,
      now: () => NOW * 1000,
    })
    const first = v.verify(await sign(old, { sub: 'u' }))
    const rotatedToken = await sign(rotated, { sub: 'v' })
    await began
    const refused = await v.verify(rotatedToken).then(
      () => undefined,
      (err: Error & { retryAfter?: number }) => err,
    )
    t.match(await first, { sub: 'u' }, 'the token that began the fetch is checked with it')
    t.match(
      refused,
      { code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE', retryAfter: 30 },
      'the one that joined it is to be sent again, not refused for good',
    )
  },
)

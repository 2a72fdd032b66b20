/**
 * What an OP's ID token and userinfo may put in a session: a `sub` that can
 * name one (OIDC Core §2), and claims of a bounded size and depth. A
 * refused answer is the 400 `login_failed` page naming the check, and no
 * session; oauth4webapi's own checks are in idp-answers-classified.test.ts.
 */
import t, { type Test } from 'tap'
import { CLAIMS_MAX_BYTES, SUB_MAX_LENGTH } from '../../src/oidc/claims.js'
import type { GrantHolder } from '../../src/oidc/rotated.js'
import { CLIENT_ID } from '../helpers/gateway.js'
import {
  discoveredClient,
  ISSUER,
  JSON_HEADERS,
  type MockIdpOptions,
  tokenAnswer,
} from '../helpers/mock-idp.js'

const seconds = () => Math.floor(Date.now() / 1000)

/** The token endpoint's ID token, unsigned: oauth4webapi takes it on TLS's word (OIDC Core §3.1.3.7 item 6). */
function idToken(payload: string): string {
  return `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(payload).toString('base64url')}.c2ln`
}

/** The JSON of an ID token's claims for login `nonce`, with `extra` (raw JSON members) after them. */
function claimsJson(nonce: string, sub: string, extra = ''): string {
  const claims = { iss: ISSUER, aud: CLIENT_ID, sub, nonce, iat: seconds(), exp: seconds() + 300 }
  return `${JSON.stringify(claims).slice(0, -1)}${extra ? `,${extra}` : ''}}`
}

/** A login whose code is answered with an ID token of `sub` and `extra`, and userinfo with `userinfo` if given. */
async function signIn(
  t: Test,
  sub: string,
  {
    extra = '',
    userinfo,
    options = {},
    refreshToken,
    abandon,
  }: {
    extra?: string
    userinfo?: unknown
    options?: MockIdpOptions
    refreshToken?: string
    abandon?: (refreshToken: string, holder: GrantHolder) => Promise<void>
  } = {},
) {
  const { idp, oidc } = await discoveredClient(t, {
    ...options,
    oidc: { userinfo: userinfo !== undefined, ...options.oidc },
  })
  const { state } = await oidc.authorizationUrl('/')
  idp.intercept({ path: '/token', method: 'POST' }).reply(
    200,
    {
      access_token: 'an-access-token',
      token_type: 'Bearer',
      expires_in: 300,
      id_token: idToken(claimsJson(state.nonce, sub, extra)),
      ...(refreshToken ? { refresh_token: refreshToken } : {}),
    },
    { headers: JSON_HEADERS },
  )
  if (userinfo !== undefined)
    idp.intercept({ path: '/me', method: 'GET' }).reply(200, userinfo as object, { headers: JSON_HEADERS })
  return oidc.callback(
    new URL(`https://app.test/auth/callback?code=c&state=${state.state}`),
    state,
    undefined,
    abandon,
  )
}

const refused = (reason: RegExp) => ({ code: 'GATEHOUSE_ERR_LOGIN_FAILED', statusCode: 400, message: reason })

t.test('an empty sub names no one: refused', async (t) => {
  await t.rejects(signIn(t, ''), refused(/"sub" claim is empty/))
})

t.test('a sub over OIDC Core’s 255 characters is refused; one of 255 signs in', async (t) => {
  await t.rejects(signIn(t, 's'.repeat(SUB_MAX_LENGTH + 1)), refused(/256 characters, over OIDC Core's 255/))
  t.equal((await signIn(t, 's'.repeat(SUB_MAX_LENGTH))).sub.length, SUB_MAX_LENGTH)
})

t.test('claims nested thousands deep are refused, not a stack overflow later', async (t) => {
  const deep = `"deep":${'['.repeat(5000)}${']'.repeat(5000)}`
  await t.rejects(signIn(t, 'alice', { extra: deep }), refused(/nest deeper than 32 levels/))
})

t.test('userinfo claims over the session bound are refused, quoting no token', async (t) => {
  const err = await signIn(t, 'alice', {
    userinfo: { sub: 'alice', blob: 'x'.repeat(CLAIMS_MAX_BYTES) },
  }).catch((e: Error) => e)
  t.match(err, refused(/the claims take \d+ bytes as JSON, over the 65536 a session keeps/))
  t.notMatch((err as Error).message, /an-access-token|xxxx/, 'neither the token nor the claims are quoted')
})

t.test('__proto__ and constructor claims stay plain data; the prototype is untouched', async (t) => {
  const extra = '"__proto__":{"login_hint":"planted"},"constructor":{"prototype":{"p":1}}'
  const { claims } = await signIn(t, 'alice', { extra })
  t.equal(Object.getPrototypeOf(claims), Object.prototype, 'still a plain object')
  t.ok(Object.hasOwn(claims, '__proto__'), 'kept as the claim it is')
  t.equal((claims as { login_hint?: unknown }).login_hint, undefined, 'nothing inherited from it')
  const allowed = await signIn(t, 'alice', { options: { config: { claims: ['constructor', 'toString'] } } })
  t.same(Object.keys(allowed.claims), [], "an allowed name the IdP did not send finds nothing of Object's")
})

t.test('a sign-in refused after the code exchange hands its refresh token to be given back', async (t) => {
  const abandoned: string[] = []
  const abandon = async (token: string) => {
    abandoned.push(token)
  }
  await t.rejects(signIn(t, '', { refreshToken: 'rt-of-a-refused-sign-in', abandon }), refused(/empty/))
  t.same(abandoned, ['rt-of-a-refused-sign-in'], 'no grant is left alive for a session that never was')
  await signIn(t, 'alice', { refreshToken: 'rt-of-a-session', abandon })
  t.same(abandoned, ['rt-of-a-refused-sign-in'], 'a sign-in that succeeds keeps its own')
})

t.test(
  'an ID token oauth4webapi refuses after a 200 (nonce, aud, auth_time) gives back its refresh token too',
  async (t) => {
    const abandoned: string[] = []
    const abandon = async (token: string) => {
      abandoned.push(token)
    }
    // A later member of the same name is the one JSON.parse keeps.
    await t.rejects(
      signIn(t, 'alice', { extra: '"nonce":"another-login"', refreshToken: 'rt-nonce', abandon }),
      {
        code: 'GATEHOUSE_ERR_LOGIN_FAILED',
        message: /nonce/,
      },
    )
    await t.rejects(
      signIn(t, 'alice', { extra: '"aud":"another-client"', refreshToken: 'rt-aud', abandon }),
      {
        code: 'GATEHOUSE_ERR_LOGIN_FAILED',
      },
    )
    await t.rejects(
      signIn(t, 'alice', {
        extra: `"auth_time":${seconds() - 3600}`,
        options: { oidc: { authorizationParams: { max_age: '60' } } },
        refreshToken: 'rt-max-age',
        abandon,
      }),
      { code: 'GATEHOUSE_ERR_LOGIN_FAILED', message: /elapsed since the last End-User authentication/ },
    )
    t.same(abandoned, ['rt-nonce', 'rt-aud', 'rt-max-age'], 'each refused sign-in leaves no grant alive')
    await t.rejects(signIn(t, 'alice', { extra: '"nonce":"another-login"', abandon }))
    t.equal(abandoned.length, 3, 'an answer without a refresh token gives nothing back')
  },
)

t.test('a refused code exchange (an error answer) has no grant to give back', async (t) => {
  const { idp, oidc } = await discoveredClient(t, { oidc: { userinfo: false } })
  const { state } = await oidc.authorizationUrl('/')
  void tokenAnswer(idp, 400, { error: 'invalid_grant', refresh_token: 'not-a-grant' })
  const abandoned: string[] = []
  await t.rejects(
    oidc.callback(
      new URL(`https://app.test/auth/callback?code=c&state=${state.state}`),
      state,
      undefined,
      async (token) => {
        abandoned.push(token)
      },
    ),
  )
  t.same(abandoned, [], 'only a 200 made a grant')
})

t.test(
  'a refused sign-in names the holder of the grant it gives back, so one a live session shares is kept',
  async (t) => {
    const abandoned: unknown[] = []
    const abandon = async (token: string, holder: GrantHolder) => {
      abandoned.push([token, holder])
    }
    // The ID token is refused, and read unchecked for its sub and sid alone.
    await t.rejects(
      signIn(t, 'alice', {
        extra: '"sid":"idp-session-1","nonce":"another-login"',
        refreshToken: 'rt-1',
        abandon,
      }),
    )
    await t.rejects(signIn(t, '', { extra: '"sid":"idp-session-2"', refreshToken: 'rt-2', abandon }))
    t.same(abandoned, [
      ['rt-1', { sub: 'alice', sid: 'idp-session-1' }],
      ['rt-2', { sub: '', sid: 'idp-session-2' }],
    ])
  },
)

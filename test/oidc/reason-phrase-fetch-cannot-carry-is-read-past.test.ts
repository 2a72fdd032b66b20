/**
 * The reason phrase of an IdP's status line is free text (RFC 9112 §4:
 * `*( HTAB / SP / VCHAR / obs-text )`, and "a client SHOULD ignore" it);
 * undici reads it as UTF-8 and as it comes. Where the gateway re-makes an
 * answer (a compressed one, to bound what it decodes to; a 4xx OAuth error
 * labelled as no JSON; a JWKS of too many keys) it copied that text into
 * a fetch `Response`, whose constructor takes only a reason phrase of
 * bytes: a localized `200 Успешно`, or one with a DEL in it, threw a
 * TypeError before oauth4webapi saw the answer. A refresh the IdP had
 * carried out was then unreadable, its rotated refresh token lost (the next
 * redemption a replay, RFC 9700 §4.14.2), and an `invalid_grant` was a
 * transient failure that kept a dead session on 503. No caller reads the
 * reason phrase, so none is copied.
 */
import type { Socket } from 'node:net'
import { gzipSync } from 'node:zlib'
import t, { type Test } from 'tap'
import { OidcClient } from '../../src/oidc/client.js'
import { createIdpHttp } from '../../src/oidc/idp-http.js'
import { firstKeysOf, MAX_JWKS_KEYS } from '../../src/oidc/logout-token-keys.js'
import { idpFailureOf } from '../../src/oidc/translate.js'
import { testConfig } from '../helpers/gateway.js'
import { NOT_FOUND, rawUpstream } from '../helpers/http-server.js'

/** A whole HTTP/1.1 answer as latin1 text, as rawUpstream writes it: `reason` sent as UTF-8 bytes. */
function answer(status: number, reason: string, headers: Record<string, string>, body: Buffer): string {
  const head = [
    `HTTP/1.1 ${status} ${Buffer.from(reason, 'utf8').toString('latin1')}`,
    ...Object.entries({ ...headers, 'content-length': String(body.length), connection: 'close' }).map(
      ([name, value]) => `${name}: ${value}`,
    ),
  ].join('\r\n')
  return `${head}\r\n\r\n${body.toString('latin1')}`
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value))

async function idp(t: Test, token: () => string) {
  let issuer = ''
  const server = await rawUpstream(t, (path: string, _socket: Socket) => {
    if (path === '/.well-known/openid-configuration')
      return answer(
        200,
        'OK',
        { 'content-type': 'application/json' },
        json({
          issuer,
          authorization_endpoint: `${issuer}/auth`,
          token_endpoint: `${issuer}/token`,
          id_token_signing_alg_values_supported: ['RS256'],
        }),
      )
    if (path === '/token') return token()
    return NOT_FOUND
  })
  issuer = server.url
  const oidc = new OidcClient(testConfig({ port: 8080, issuer, routes: [] }), Date.now, {})
  t.teardown(() => oidc.close())
  await oidc.discover()
  return oidc
}

const current = { accessToken: 'a', accessTokenExpiresAt: 0, accessTokenLifetime: 1, refreshToken: 'rt-old' }
const rotated = { access_token: 'at-new', token_type: 'Bearer', expires_in: 60, refresh_token: 'rt-new' }

for (const reason of ['Успешно', 'OK\u007f'])
  t.test(
    `a compressed refresh answer of 200 ${JSON.stringify(reason)} is read, its rotated token kept`,
    async (t) => {
      const oidc = await idp(t, () =>
        answer(
          200,
          reason,
          { 'content-type': 'application/json', 'content-encoding': 'gzip' },
          gzipSync(json(rotated)),
        ),
      )
      const tokens = await oidc.refresh(current).catch((err: unknown) => err)
      t.match(tokens, { accessToken: 'at-new', refreshToken: 'rt-new' })
    },
  )

for (const reason of ['Неверный запрос', 'Bad\u007fRequest'])
  t.test(`a 400 ${JSON.stringify(reason)} naming invalid_grant as text/plain ends the session`, async (t) => {
    const oidc = await idp(t, () =>
      answer(400, reason, { 'content-type': 'text/plain' }, json({ error: 'invalid_grant' })),
    )
    const err = await oidc.refresh(current).catch((err: unknown) => err)
    t.match(err, { code: 'GATEHOUSE_ERR_SESSION_EXPIRED' })
    t.match(idpFailureOf(err), { answer: 'invalid_grant', status: 400, oauthError: 'invalid_grant' })
  })

t.test('a JWKS of 200 "Успешно", cut to its first keys, still reaches jose', async (t) => {
  const keys = Array.from({ length: MAX_JWKS_KEYS + 1 }, (_, i) => ({ kty: 'oct', kid: `k${i}`, k: 'AAAA' }))
  const server = await rawUpstream(t, () =>
    answer(200, 'Успешно', { 'content-type': 'application/json' }, json({ keys })),
  )
  const http = createIdpHttp({ timeoutMs: 5_000, connectTimeoutMs: 1_000, allowHttp: true })
  t.teardown(() => http.close())
  let held: number | undefined
  const fetched = await firstKeysOf(http.fetch, (count) => {
    held = count
  })(`${server.url}/jwks`, {}).catch((err: unknown) => err)
  t.equal((fetched as Response).status, 200)
  t.equal(((await (fetched as Response).json()) as { keys: unknown[] }).keys.length, MAX_JWKS_KEYS)
  t.equal(held, MAX_JWKS_KEYS + 1, 'how many it held is told')
})

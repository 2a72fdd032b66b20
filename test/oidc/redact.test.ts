import t from 'tap'
import { redactEchoes } from '../../src/oidc/redact.js'

t.test('a JWS or JWE anywhere in the text is cut out, whoever sent it', async (t) => {
  const jws = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.MEUCIQ-_x'
  const jwe = 'eyJhbGciOiJSU0EtT0FFUCJ9.a2V5.aXY.Y2lwaGVy.dGFn'
  t.equal(redactEchoes(`bad ${jws}, and ${jwe}.`, {}), 'bad [redacted], and [redacted].')
  t.equal(redactEchoes('unsecured eyJhbGciOiJub25lIn0.eyJ4IjoxfQ.', {}), 'unsecured [redacted]')
  t.equal(redactEchoes('cut short eyJhbGciOiJFUzI1NiJ9.eyJzdWIi', {}), 'cut short [redacted]')
  for (const text of ['Basic authentication failed', 'a header eyJhbGciOiJFUzI1NiJ9 alone', 'key.example']) {
    t.equal(redactEchoes(text, {}), text, `${text}: nothing to cut`)
  }
})

t.test('a secret is cut out as sent, percent- or form-encoded, and in a Basic header', async (t) => {
  const secret = 'a b-c!~(d)*_.0123'
  const call = { secrets: [secret], clientId: 'my app' }
  const basic = (id: string, s: string) => Buffer.from(`${id}:${s}`).toString('base64')
  for (const echo of [
    secret,
    encodeURIComponent(secret),
    encodeURIComponent(secret).toLowerCase(),
    new URLSearchParams({ s: secret }).toString().slice(2),
    'a+b%2Dc%21%7E%28d%29%2A%5F%2E0123',
    basic('my app', secret),
    basic('my+app', new URLSearchParams({ s: secret }).toString().slice(2)),
    basic('my+app', 'a+b%2Dc%21%7E%28d%29%2A%5F%2E0123'),
    basic('my+app', new URLSearchParams({ s: secret }).toString().slice(2)).replace(/=+$/, ''),
  ]) {
    t.equal(redactEchoes(`[${echo}]`, call), '[[redacted]]', echo)
  }
  t.equal(
    redactEchoes(basic('other', secret), { secrets: [secret] }),
    basic('other', secret),
    'a Basic header is known by the client id it joins',
  )
  t.equal(redactEchoes('short', { secrets: ['short'] }), 'short', 'too short to be a secret: left as it is')
})

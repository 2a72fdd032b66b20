import t from 'tap'
import { hasChallenge, parseChallenges } from '../src/www-authenticate.js'

const read = (value: string) =>
  parseChallenges(value)?.map(({ scheme, params }) => ({ scheme, params: Object.fromEntries(params) }))

t.test('challenges and their parameters, as RFC 9110 §11.6.1 writes them', async (t) => {
  t.same(read('Bearer realm="dpop", error="use_dpop_nonce"'), [
    { scheme: 'bearer', params: { realm: 'dpop', error: 'use_dpop_nonce' } },
  ])
  t.same(read('Bearer realm="api", DPoP error="use_dpop_nonce", algs="ES256 PS256"'), [
    { scheme: 'bearer', params: { realm: 'api' } },
    { scheme: 'dpop', params: { error: 'use_dpop_nonce', algs: 'ES256 PS256' } },
  ])
  t.same(read('Basic, dPoP ERROR = invalid_dpop_proof'), [
    { scheme: 'basic', params: {} },
    { scheme: 'dpop', params: { error: 'invalid_dpop_proof' } },
  ])
  t.same(read('Negotiate YII=, Bearer error="a\\"b, c"'), [
    { scheme: 'negotiate', params: {} },
    { scheme: 'bearer', params: { error: 'a"b, c' } },
  ])
  t.same(read('Basic YWxhZGRpbjpvcGVuc2VzYW1l'), [{ scheme: 'basic', params: {} }])
})

t.test('a value that does not parse is no challenge', async (t) => {
  for (const value of [
    '',
    ' , ',
    '"DPoP" error="use_dpop_nonce"',
    'DPoP error="use_dpop_nonce',
    'DPoP error=a error=b',
  ])
    t.equal(parseChallenges(value), undefined, value)
  t.equal(parseChallenges('DPoP error="x", error="y"'), undefined, 'a parameter named twice')
})

t.test('only the scheme asked for counts, in any field line', async (t) => {
  t.notOk(hasChallenge('Bearer realm="dpop", error="use_dpop_nonce"', 'dpop', ['use_dpop_nonce']))
  t.notOk(hasChallenge('DPoP realm="use_dpop_nonce"', 'dpop', ['use_dpop_nonce']))
  t.ok(hasChallenge(['Basic realm="x"', 'DPoP error="use_dpop_nonce"'], 'dpop', ['use_dpop_nonce']))
  t.ok(hasChallenge(['not "parsed', 'dpop error=use_dpop_nonce'], 'dpop', ['use_dpop_nonce']))
  t.notOk(hasChallenge(undefined, 'dpop', ['use_dpop_nonce']))
})

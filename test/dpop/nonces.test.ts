import t from 'tap'
import { DpopNonces } from '../../src/dpop/nonces.js'
import { asksForNonce } from '../../src/dpop/upstream.js'

const origin = 'https://api.example'
const challenge = 'DPoP error="use_dpop_nonce"'

t.test('a nonce is remembered only when a proof can carry it: NQCHAR, and not without end', async (t) => {
  const nonces = new DpopNonces()
  nonces.remember(origin, 'n-1')
  t.equal(nonces.get(origin), 'n-1')
  for (const bad of ['', 'has space', 'has"quote', 'x'.repeat(1025)]) {
    nonces.remember(origin, bad)
    t.equal(
      nonces.get(origin),
      'n-1',
      `${JSON.stringify(bad.slice(0, 12))}… (${bad.length}) is ignored; the last good one stays`,
    )
  }
  nonces.remember(origin, 'y'.repeat(1024))
  t.equal(nonces.get(origin)?.length, 1024, 'up to 1 KiB is taken')
})

t.test('a challenge is answered only when its nonce could be used', async (t) => {
  t.ok(asksForNonce({ 'www-authenticate': challenge, 'dpop-nonce': 'n-2' }))
  t.notOk(asksForNonce({ 'www-authenticate': challenge }), 'no nonce')
  t.notOk(
    asksForNonce({ 'www-authenticate': challenge, 'dpop-nonce': 'not "usable"' }),
    'a nonce no proof may carry: a replay would be refused the same way',
  )
  t.notOk(asksForNonce({ 'www-authenticate': challenge, 'dpop-nonce': 'z'.repeat(1025) }), 'too long')
  t.notOk(asksForNonce({ 'www-authenticate': 'Bearer error="invalid_token"', 'dpop-nonce': 'n-3' }))
})

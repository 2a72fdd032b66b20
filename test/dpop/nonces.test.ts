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

t.test('control characters, DEL and non-ASCII are no NQCHAR: such a nonce is not taken', async (t) => {
  const nonces = new DpopNonces()
  for (const bad of ['n\x00', 'n\t1', 'n\r\n1', 'n\x7f', 'nonce-é', 'nonce-日本', 'n\\1']) {
    nonces.remember(origin, bad)
    t.equal(nonces.get(origin), undefined, `${JSON.stringify(bad)} is ignored`)
    t.notOk(
      asksForNonce({ 'www-authenticate': challenge, 'dpop-nonce': bad }),
      `${JSON.stringify(bad)}: no replay`,
    )
  }
})

t.test('at most 256 origins are remembered, the least recently told going first', async (t) => {
  const nonces = new DpopNonces()
  for (let i = 0; i < 1_000; i++) nonces.remember(`https://api-${i}.example`, `n-${i}`)
  const held = Array.from({ length: 1_000 }, (_, i) => nonces.get(`https://api-${i}.example`)).filter(
    (n) => n !== undefined,
  )
  t.equal(held.length, 256, 'a flood of origins holds 256 nonces of at most 1 KiB: 256 KiB at most')
  t.equal(nonces.get('https://api-999.example'), 'n-999', 'the latest is kept')
  t.equal(nonces.get('https://api-743.example'), undefined, 'the 257th latest is gone')
})

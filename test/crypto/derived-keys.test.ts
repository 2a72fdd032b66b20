import t from 'tap'
import {
  addressNames,
  clientTokenKeys,
  deriveCookieKeys,
  IndexHashes,
} from '../../src/crypto/derived-keys.js'
import { SealingKey } from '../../src/crypto/sealing-key.js'

const OLD = 'an-old-session-secret-of-at-least-32-characters'
const NEW = 'a-new-session-secret-of-at-least-32-characters!'

t.test('the cookie keys are what they were: cookies sealed before still open', async (t) => {
  // HKDF-SHA-256(secret, salt "gatehouse", info "gatehouse session cookie v1"), as
  // every earlier version derived it; a change here would sign every user out.
  const [key] = deriveCookieKeys(['a-session-secret-of-at-least-32-characters!'])
  t.equal(key!.toString('base64url'), 'AR4mH7-kyYGIRa2Jy4XkFyZHtsmOe4CFpndz1qkcSfo')
})

t.test('client-token keys: the same on every instance, one per secret, rotating [new, old]', async (t) => {
  const [before] = clientTokenKeys([OLD])
  const sealed = before!.seal('client-token reports.read', 'cc-token')
  const rotated = clientTokenKeys([NEW, OLD])
  t.equal(rotated.length, 2)
  t.not(rotated[0]!.id, rotated[1]!.id, 'each secret has its own key id')
  t.equal(rotated[1]!.id, before!.id, 'the id follows the secret, not its place in the list')
  t.same(SealingKey.openWith(rotated, 'client-token reports.read', sealed), { ok: true, text: 'cc-token' })
  t.same(SealingKey.openWith(clientTokenKeys([NEW]), 'client-token reports.read', sealed), {
    ok: false,
    reason: 'unknown-key',
  })
  t.ok(clientTokenKeys([OLD])[0]!.equals(before!), 'derived alike by another instance')
  for (const key of clientTokenKeys([OLD, NEW])) {
    t.notOk(key.id.includes(OLD.slice(0, 6)) || OLD.includes(key.id), 'the id reveals nothing of the secret')
  }
})

t.test('each use has its own key: no two labels give the same bytes', async (t) => {
  const cookie = deriveCookieKeys([OLD])[0]!
  const clientToken = clientTokenKeys([OLD])[0]!.exportBytes()
  t.not(cookie.toString('hex'), clientToken.toString('hex'))
})

t.test('index hashes: keyed, per claim, found under every secret', async (t) => {
  const before = new IndexHashes([OLD])
  const after = new IndexHashes([NEW, OLD])
  const name = before.current('sub', 'alice@example.com')
  t.match(name, /^[A-Za-z0-9_-]{43}$/, 'an HMAC-SHA-256, base64url')
  t.notMatch(name, /alice/)
  t.equal(new IndexHashes([OLD]).current('sub', 'alice@example.com'), name, 'every instance names it alike')
  t.not(after.current('sub', 'alice@example.com'), name, 'written under the new secret after a rotation')
  t.same(after.all('sub', 'alice@example.com'), [after.current('sub', 'alice@example.com'), name])
  t.not(before.current('sid', 'alice@example.com'), name, 'a sid equal to a sub names another index')
  t.not(before.current('sub', 'alice@example.co'), name)
  t.same(new IndexHashes([OLD, OLD]).all('sub', 'x').length, 1, 'a repeated secret is looked up once')
  t.throws(() => new IndexHashes([]), TypeError)
})

t.test('address names: keyed, one per address on every instance, of a fixed length', async (t) => {
  const named = addressNames([OLD])
  const name = named('198.51.100.7')
  t.equal(name, addressNames([OLD, NEW])('198.51.100.7'), 'the first secret names it, on every instance')
  t.not(name, named('198.51.100.8'), 'another address, another name')
  t.not(
    name,
    addressNames([NEW])('198.51.100.7'),
    'another secret, another name: no table of all addresses opens it',
  )
  t.match(name, /^[A-Za-z0-9_-]{22}$/, '128 bits, whatever the address')
  t.equal(named('2001:db8:a:b::/64').length, 22)
  t.throws(() => addressNames([]), TypeError)
})

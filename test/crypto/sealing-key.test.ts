import { randomBytes } from 'node:crypto'
import { inspect } from 'node:util'
import fc from 'fast-check'
import t from 'tap'
import { SEALING_KEY_BYTES, SealingKey } from '../../src/crypto/sealing-key.js'

const bytes = () => randomBytes(SEALING_KEY_BYTES)
const CONTEXT = 'session abc tokens'

/** `sealed` with one character of its body changed to another base64url character. */
function flipped(sealed: string, at: number): string {
  const head = sealed.lastIndexOf('.') + 1
  const i = head + (at % (sealed.length - head - 1))
  return sealed.slice(0, i) + (sealed[i] === 'A' ? 'B' : 'A') + sealed.slice(i + 1)
}

t.test('what is sealed opens, with the same key and context, to the same text', async (t) => {
  const key = new SealingKey('k1', bytes())
  const sealed = key.seal(CONTEXT, '{"refreshToken":"refresh-token-value"}')
  t.match(sealed, /^a1\.k1\.[A-Za-z0-9_-]+$/, 'format, key id, base64url body')
  t.notMatch(sealed, /refresh-token-value|refreshToken/)
  t.same(key.open(CONTEXT, sealed), { ok: true, text: '{"refreshToken":"refresh-token-value"}' })
  t.not(key.seal(CONTEXT, 'same'), key.seal(CONTEXT, 'same'), 'a new nonce every time')
  t.same(key.open('', key.seal('', '')), { ok: true, text: '' }, 'empty context and text')
})

t.test('a value moved to another context, key or record does not open', async (t) => {
  const key = new SealingKey('k1', bytes())
  const sealed = key.seal(CONTEXT, 'secret')
  const refused = { ok: false, reason: 'refused' }
  t.same(key.open('session abd tokens', sealed), refused, 'another session')
  t.same(key.open('session abc login', sealed), refused, 'another field')
  t.same(new SealingKey('k1', bytes()).open(CONTEXT, sealed), refused, 'another key under the same id')
  t.same(new SealingKey('k2', bytes()).open(CONTEXT, sealed), { ok: false, reason: 'unknown-key' })
  // The key id is bound too: relabelled, the value names a key that did not seal it.
  const other = new SealingKey('k2', Buffer.from(key.exportBytes()))
  t.same(other.open(CONTEXT, sealed.replace('.k1.', '.k2.')), refused, 'relabelled to another key id')
})

t.test('malformed values are refused without throwing', async (t) => {
  const key = new SealingKey('k1', bytes())
  const good = key.seal(CONTEXT, 'x')
  for (const value of [
    '',
    'a1',
    'a1.k1',
    'a1.k1.',
    'a1.k1.AAAA',
    `b1${good.slice(2)}`,
    `${good}.x`,
    'plain JSON',
  ]) {
    t.same(key.open(CONTEXT, value), { ok: false, reason: 'malformed' }, JSON.stringify(value))
  }
})

t.test('any change to a sealed value is refused (property)', async (t) => {
  const key = new SealingKey('k1', bytes())
  fc.assert(
    fc.property(fc.string(), fc.string(), fc.nat(), (context, text, at) => {
      const sealed = key.seal(context, text)
      const opened = key.open(context, sealed)
      if (!opened.ok || opened.text !== text) return false
      const changed = flipped(sealed, at)
      return changed === sealed || key.open(context, changed).ok === false
    }),
    { numRuns: 500 },
  )
  t.pass('500 values opened as sealed, and refused once changed')
})

t.test('openWith opens with whichever key the value names: rotation is [new, old]', async (t) => {
  const old = new SealingKey('old', bytes())
  const next = new SealingKey('new', bytes())
  const sealed = old.seal(CONTEXT, 'v')
  t.same(SealingKey.openWith([next, old], CONTEXT, sealed), { ok: true, text: 'v' })
  t.same(SealingKey.openWith([next], CONTEXT, sealed), { ok: false, reason: 'unknown-key' })
  t.same(SealingKey.openWith([], CONTEXT, sealed), { ok: false, reason: 'unknown-key' })
})

t.test('the key prints, logs and serialises as its id, never its bytes', async (t) => {
  const raw = bytes()
  const key = new SealingKey('k1', raw)
  const shown = [JSON.stringify({ key }), inspect(key), inspect({ nested: { key } }), String(key), `${key}`]
  for (const text of shown) {
    t.notOk(text.includes(raw.toString('base64url')) || text.includes(raw.toString('hex')), text)
  }
  t.match(JSON.stringify({ key }), /SealingKey k1/)
  t.same(Object.keys(key), ['id'], 'no enumerable field but the id')
  t.ok(key.equals(new SealingKey('other', raw)), 'equal bytes are equal keys')
  t.notOk(key.equals(new SealingKey('k1', bytes())))
})

t.test('keys of the wrong size or with odd ids are refused at construction', async (t) => {
  t.throws(() => new SealingKey('k1', randomBytes(16)), TypeError)
  t.throws(() => new SealingKey('k.1', bytes()), TypeError, 'a dot would break the envelope')
  t.throws(() => new SealingKey('', bytes()), TypeError)
  t.throws(() => new SealingKey('x'.repeat(17), bytes()), TypeError)
})

import { inspect } from 'node:util'
import t from 'tap'
import { SessionKey } from '../../src/session/session-key.js'

t.test('a session key travels in the cookie as 43 characters and names its record', async (t) => {
  const key = SessionKey.generate()
  const cookie = key.toCookie()
  t.match(cookie, /^[A-Za-z0-9_-]{43}$/)
  const back = SessionKey.fromCookie(cookie)!
  t.ok(back.equals(key), 'the cookie gives the key back')
  t.equal(back.sessionId, key.sessionId, 'and so the same record id')
  t.match(key.sessionId, /^[A-Za-z0-9_-]{43}$/, 'a 256-bit id')
  t.not(key.sessionId, cookie, 'the id is not the key')
  const other = SessionKey.generate()
  t.not(other.sessionId, key.sessionId)
  t.notOk(other.equals(key))
  // What the store holds (the id) does not open what the key sealed.
  const sealed = key.seal('session x tokens', 'R1')
  t.same(SessionKey.fromCookie(key.sessionId)!.open('session x tokens', sealed), {
    ok: false,
    reason: 'refused',
  })
})

t.test('a cookie without a well-formed key carries none', async (t) => {
  for (const value of [
    undefined,
    null,
    42,
    '',
    'short',
    `${'A'.repeat(43)}=`,
    `${'A'.repeat(42)}!`,
    'A'.repeat(44),
    {},
  ]) {
    t.equal(SessionKey.fromCookie(value), undefined, inspect(value))
  }
})

t.test('a session key is never printed', async (t) => {
  const key = SessionKey.generate()
  const cookie = key.toCookie()
  for (const text of [JSON.stringify({ key }), inspect({ key }), String(key)]) {
    t.notOk(text.includes(cookie), text)
  }
})

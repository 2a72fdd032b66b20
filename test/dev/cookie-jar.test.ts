import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'

t.test('keeps cookies per origin and honours deletion the way a browser does', async (t) => {
  const jar = new CookieJar()
  const a = 'http://127.0.0.1:1000/some/path'
  const b = 'http://127.0.0.1:2000/'
  jar.store(a, ['sid=one; Path=/; HttpOnly; SameSite=Lax', 'state=x=y; Path=/auth'])
  jar.store(b, ['sid=two'])
  t.equal(jar.header(a), 'sid=one; state=x=y', 'values may hold "="')
  t.equal(jar.header('http://127.0.0.1:1000/other'), 'sid=one; state=x=y', 'paths are not told apart')
  t.equal(jar.get(b, 'sid'), 'two', 'another port is another jar')

  jar.store(a, ['state=; Max-Age=0'])
  t.equal(jar.get(a, 'state'), undefined, 'Max-Age=0 deletes')
  jar.store(a, ['sid=old; Expires=Thu, 01 Jan 1970 00:00:00 GMT'])
  t.equal(jar.get(a, 'sid'), undefined, 'an Expires in the past deletes')
  jar.store(a, ['sid=kept; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT'])
  t.equal(jar.get(a, 'sid'), 'kept', 'Max-Age wins over Expires (RFC 6265 §5.3)')
  jar.store(a, ['garbage'])
  t.equal(jar.header(a), 'sid=kept', 'a line without a name is ignored')

  jar.set(b, 'extra', '1')
  jar.delete(b, 'sid')
  t.equal(jar.header(b), 'extra=1')
  t.equal(new CookieJar().header(a), undefined)
})

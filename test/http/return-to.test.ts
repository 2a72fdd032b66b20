import t from 'tap'
import { safeReturnTo } from '../../src/http/return-to.js'

const origin = 'https://app.example.com'

t.test('accepts same-origin relative paths and normalises them', async (t) => {
  t.equal(safeReturnTo(undefined, origin), '/')
  t.equal(safeReturnTo('', origin), '/')
  t.equal(safeReturnTo('/', origin), '/')
  t.equal(safeReturnTo('/orders', origin), '/orders')
  t.equal(safeReturnTo('/orders?page=2#top', origin), '/orders?page=2#top')
  t.equal(safeReturnTo('/a/../b', origin), '/b')
  t.equal(safeReturnTo('/%2F%2Fevil.com', origin), '/%2F%2Fevil.com', 'encoded slashes stay a path')
})

t.test('refuses anything a browser could resolve off-origin', async (t) => {
  const attacks = [
    '//evil.com',
    '///evil.com',
    '/\\evil.com',
    '\\\\evil.com',
    '/\t/evil.com',
    '/..//evil.com',
    '/.//evil.com',
    '/a/../..//evil.com',
    '/\n/evil.com',
    'https://evil.com',
    'http:evil.com',
    'javascript:alert(1)',
    'JaVaScRiPt:alert(1)',
    'data:text/html,x',
    'evil.com',
    '.evil.com',
    '/ok\u0000',
    '/ok\r\nSet-Cookie: x=1',
    '/ok\u007f',
    ['/', '/'],
    42,
    `/${'a'.repeat(3000)}`,
  ]
  for (const value of attacks)
    t.equal(safeReturnTo(value, origin), undefined, JSON.stringify(value).slice(0, 40))
})

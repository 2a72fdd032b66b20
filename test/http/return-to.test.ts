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

t.test('the length bound counts the path as kept, percent-encoded', async (t) => {
  t.equal(safeReturnTo(`/${'a'.repeat(2047)}`, origin)?.length, 2048)
  t.equal(safeReturnTo(`/${'"'.repeat(682)}x`, origin)?.length, 2048, '684 characters, 2,048 encoded')
  t.equal(safeReturnTo(`/${'"'.repeat(1000)}`, origin), undefined, '1,001 characters, 3,001 encoded')
  t.equal(safeReturnTo(`/${'é'.repeat(400)}`, origin), undefined, '401 characters, 2,401 encoded')
  t.equal(safeReturnTo(`/?q=${'日'.repeat(300)}`, origin), undefined, 'in the query too')
})

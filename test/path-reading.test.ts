import t from 'tap'
import { DECODES, decodeEscapes, upstreamReading } from '../src/path-reading.js'

t.test('the most liberal reading of a path', async (t) => {
  for (const [path, reading] of [
    ['/api/orders', '/api/orders'],
    ['/api/Orders/AB12', '/api/orders/ab12'],
    ['/api/admin%2Fx', '/api/admin/x'],
    ['/api/admin%252Fx', '/api/admin/x'],
    ['/api/admin%5Cx', '/api/admin/x'],
    ['/api\\admin', '/api/admin'],
    ['/api//admin///x', '/api/admin/x'],
    ['/api/admin;v=1/x;y', '/api/admin/x'],
    ['/api/admin%3Bv=1/x', '/api/admin/x'],
    ['/api/admin./x', '/api/admin/x'],
    ['/api/admin%2e%20/x', '/api/admin/x'],
    ['/api/admin%3F/x', '/api/admin'],
    ['/api/admin%23x', '/api/admin'],
    ['/api/adm%C4%B1n', '/api/admin'],
    ['/api/%C5%BFecret', '/api/secret'],
    ['/api/caf%C3%A9', '/api/café'],
    ['/api/v1.2/file.json', '/api/v1.2/file.json'],
  ] as const) {
    t.equal(upstreamReading(path), reading, path)
  }
})

t.test('escapes are decoded at most the rounds asked', async (t) => {
  t.equal(decodeEscapes('%252541', DECODES), 'A')
  t.equal(decodeEscapes('%252541', 2), '%41')
  t.equal(decodeEscapes('a%zz%2', DECODES), 'a%zz%2', 'no escape: left as it is')
})

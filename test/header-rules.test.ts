import t from 'tap'
import { connectionNamed, HOP_BY_HOP, isHopByHop } from '../src/header-rules.js'

t.test('Connection names hop-by-hop headers besides its own close and keep-alive options', async (t) => {
  t.equal(connectionNamed(undefined), undefined)
  t.equal(connectionNamed('keep-alive'), undefined)
  t.equal(connectionNamed('Close'), undefined)
  t.same(connectionNamed('keep-alive, X-Hop ,upgrade'), ['x-hop', 'upgrade'])
  t.same(connectionNamed(['x-a', 'x-b, close']), ['x-a', 'x-b'])
})

t.test('a header is hop-by-hop when RFC 9110 lists it or its Connection header names it', async (t) => {
  for (const name of HOP_BY_HOP) t.ok(isHopByHop(name, undefined), name)
  t.notOk(isHopByHop('content-type', undefined), 'an end-to-end header')
  t.notOk(isHopByHop('x-hop', undefined), 'unnamed, it crosses')
  t.ok(isHopByHop('x-hop', connectionNamed('close, X-Hop')), 'named, it stops here')
  t.notOk(isHopByHop('x-other', connectionNamed('x-hop')))
})

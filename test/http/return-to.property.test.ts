import fc from 'fast-check'
import t from 'tap'
import { safeReturnTo } from '../../src/http/return-to.js'
import { anyCodePoints } from '../helpers/arbitraries.js'

const origin = 'https://app.example.com'

t.test('no accepted returnTo resolves off-origin in a browser-like parser', async (t) => {
  const pieces = fc.constantFrom(
    '/',
    '//',
    '\\',
    '/\\',
    'evil.com',
    '@',
    ':',
    '%2f',
    '%5c',
    '.',
    '..',
    '\t',
    '\n',
    '\r',
    ' ',
    '#',
    '?',
    'javascript:',
    'https:',
    '\u0000',
    '\u3002',
    'a',
  )
  const candidate = fc.oneof(
    fc.array(pieces, { maxLength: 8 }).map((p) => p.join('')),
    anyCodePoints(40),
  )
  fc.assert(
    fc.property(candidate, (value) => {
      const accepted = safeReturnTo(value, origin)
      if (accepted === undefined) return true
      // WHATWG URL parsing is what browsers do with a Location header.
      return (
        new URL(accepted, origin).origin === origin &&
        new URL(value, origin).origin === origin &&
        accepted.startsWith('/') &&
        !accepted.startsWith('//')
      )
    }),
    { numRuns: 5000 },
  )
  t.pass('5000 generated values')
})

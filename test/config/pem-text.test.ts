import t from 'tap'
import { escapedBreaksHint } from '../../src/config/pem-text.js'

t.test('escaped line breaks are named; real ones, and text that is no PEM, are not', async (t) => {
  const body = 'MIIBkTCB+wIJAK'
  t.match(
    escapedBreaksHint(`-----BEGIN CERTIFICATE-----\\n${body}\\n-----END CERTIFICATE-----`),
    /the characters \\n/,
  )
  t.match(
    escapedBreaksHint(`-----BEGIN EC PRIVATE KEY-----\\r\\n${body}`),
    /the characters \\n/,
    'Windows escapes too',
  )
  t.equal(escapedBreaksHint(`-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`), '')
  t.equal(escapedBreaksHint('not a certificate'), '')
  t.notMatch(escapedBreaksHint(`-----BEGIN PRIVATE KEY-----\\n${body}`), body, 'the material is not quoted')
})

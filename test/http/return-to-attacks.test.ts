import t from 'tap'
import { buildTestApp } from '../helpers/app.js'

t.test('returnTo attacks are refused with 400 and no redirect', async (t) => {
  const app = await buildTestApp(t)
  for (const returnTo of [
    '//evil.com',
    '/\\evil.com',
    'https://evil.com',
    'javascript:alert(1)',
    '/x\r\ny',
    '/\t/evil',
  ]) {
    const res = await app.inject(`/auth/login?returnTo=${encodeURIComponent(returnTo)}`)
    t.equal(res.statusCode, 400, JSON.stringify(returnTo))
    t.notOk(res.headers.location)
    t.match(res.headers['content-type'], /text\/html/)
    t.notMatch(res.body, 'evil.com', 'the attack is not echoed')
  }
})

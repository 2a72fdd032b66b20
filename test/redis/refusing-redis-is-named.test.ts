/**
 * A Redis can be up and still refuse: full under `noeviction` (`OOM`), an
 * ACL changed under the gateway (`NOPERM`), a script past its time limit
 * (`BUSY`). Each is a 503 with Retry-After that keeps the session, as an
 * outage is; but the log line's `cause` said `ReplyError` for all of them,
 * so an operator could not tell a full Redis from a withdrawn permission
 * from a stuck script. It now names Redis's answer by its first word, and
 * what it means, never the rest of the reply.
 */
import { Redis } from 'ioredis'
import t from 'tap'
import { apiCall, login } from '../helpers/login.js'
import { type LogLine, signedInOnItsOwnRedis } from '../helpers/observed-stack.js'
import { pollUntil } from '../helpers/within.js'

t.test(
  'a Redis that refuses: 503 with Retry-After, its refusal named in the log, the session kept',
  async (t) => {
    const { redis, admin, stack, base, jar } = await signedInOnItsOwnRedis(t, [
      '--maxmemory-policy',
      'noeviction',
      '--busy-reply-threshold',
      '200',
    ])

    const lastOutage = (): LogLine | undefined =>
      stack.lines.findLast((line) => line.code === 'GATEHOUSE_ERR_STORE_UNAVAILABLE')
    const refusedWith = async (word: string) => {
      const answer = await apiCall(jar, `${base}/api/orders`)
      t.equal(answer.status, 503, `${word}: 503`)
      t.ok(Number(answer.headers.get('retry-after')) >= 1, `${word}: with Retry-After`)
      t.equal(answer.json().error, 'session_store_unavailable', `${word}: session_store_unavailable`)
      t.match(lastOutage(), { cause: new RegExp(`^Redis answered ${word}: `) }, `${word}: named in the log`)
    }

    await admin.acl('SETUSER', 'default', '-hmget')
    await refusedWith('NOPERM')
    await admin.acl('SETUSER', 'default', '+hmget')
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'served again once the ACL allows it')

    const stuck = new Redis(redis.url)
    t.teardown(() => stuck.disconnect())
    const looping = stuck.eval('while true do end', 0).catch((err: Error) => err)
    // Redis answers BUSY once the script has run past busy-reply-threshold.
    await t.rejects(
      (async () => {
        for (;;) await admin.ping()
      })(),
      /BUSY/,
    )
    await refusedWith('BUSY')
    await admin.script('KILL')
    t.match(await looping, /killed/i, 'the script is killed')
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'served again once the script is killed')

    await admin.config('SET', 'maxmemory', '1')
    const full = await login(base)
    t.equal(full.callback.status, 503, 'a sign-in while Redis is full answers 503')
    t.match(lastOutage(), { cause: /^Redis answered OOM: / }, 'OOM: named in the log')
    await admin.config('SET', 'maxmemory', '0')
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'the session was kept throughout')

    t.notOk(
      stack.lines.some((line) => /script:|while true/.test(JSON.stringify(line))),
      "no line quotes the rest of Redis's reply",
    )
  },
)

t.test(
  'a Redis too slow to answer: 503 with Retry-After, the timeout named, served once it answers',
  async (t) => {
    const { admin, stack, base, jar } = await signedInOnItsOwnRedis(t)

    // Every client's commands wait 2.5 s: past the 1 s command timeout.
    await admin.client('PAUSE', '2500', 'ALL')
    const answer = await apiCall(jar, `${base}/api/orders`)
    t.equal(answer.status, 503, '503')
    t.ok(Number(answer.headers.get('retry-after')) >= 1, 'with Retry-After')
    t.match(
      stack.lines.findLast((line) => line.code === 'GATEHOUSE_ERR_STORE_UNAVAILABLE'),
      { cause: 'Redis did not answer within the command timeout (session.storeTimeout)' },
      'the timeout named in the log, not `Error`',
    )
    await pollUntil(async () => (await apiCall(jar, `${base}/api/orders`)).status === 200)
    t.pass('served again once Redis answers')
  },
)

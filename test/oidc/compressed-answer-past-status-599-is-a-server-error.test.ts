/**
 * An IdP's answer of a status past 599 (RFC 9110 §15 gives 600–999 no
 * meaning; Node.js and undici carry any three digits) is a server error,
 * by its status alone, as a 5xx is (translate.ts). One that came compressed
 * (`Content-Encoding`) was not: the bound on what a compressed answer
 * decodes to (idp-http.ts) re-made it as a fetch `Response`, whose
 * constructor takes only 200 to 599, and the call failed with a RangeError
 * instead, logged as `unparseable` with a reason that named the gateway's
 * fetch, not the IdP's answer. The verdict was the same (transient); the
 * operator's line was not.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gzipSync } from 'node:zlib'
import t from 'tap'
import { createIdpHttp } from '../../src/oidc/idp-http.js'
import { idpFailureOf } from '../../src/oidc/translate.js'
import { discoveredClient, tokenAnswer } from '../helpers/mock-idp.js'

const body = gzipSync(Buffer.from('{"error":"server_error"}'))

t.test('over a real socket, the answer comes back with its status, not a RangeError', async (t) => {
  const server = createServer((req, res) => {
    res.writeHead(Number(req.url!.slice(1)), {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
      'content-length': body.length,
    })
    res.end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const http = createIdpHttp({ timeoutMs: 5_000, connectTimeoutMs: 1_000, allowHttp: true })
  t.teardown(() => http.close())
  for (const status of [600, 999]) {
    const answer = await http.fetch(`${base}/${status}`, {}).catch((err: unknown) => err)
    t.equal((answer as Response).status, status, `HTTP ${status} reaches the caller`)
    await (answer as Response).body?.cancel()
  }
  const ok = await http.fetch(`${base}/503`, {})
  t.same(await ok.json(), { error: 'server_error' }, 'a 5xx still decodes, bounded')
})

for (const status of [600, 999])
  t.test(
    `a refresh answered ${status} with Content-Encoding is a server error, HTTP ${status}`,
    async (t) => {
      const { idp, oidc } = await discoveredClient(t)
      void tokenAnswer(idp, status, body, { 'content-type': 'application/json', 'content-encoding': 'gzip' })
      const err = await oidc
        .refresh({ accessToken: 'a', accessTokenExpiresAt: 0, accessTokenLifetime: 1, refreshToken: 'r' })
        .catch((e: unknown) => e)
      t.match(err, { code: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE' })
      t.match(idpFailureOf(err), {
        answer: 'server_error',
        verdict: 'unavailable',
        status,
        reason: `HTTP ${status}`,
      })
    },
  )

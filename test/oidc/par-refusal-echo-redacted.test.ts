/**
 * A pushed authorization request (RFC 9126) carries the login's `state` and
 * `nonce` in its body; an IdP that quotes the request it refused puts them
 * in its `error_description`. Neither reaches a log line or a span, at the
 * chattiest log level, with every span exported.
 */
import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_SECRET } from '../helpers/gateway.js'
import { jarFetch } from '../helpers/login.js'
import { receiveSpans } from '../helpers/otlp-receiver.js'
import { startStack } from '../helpers/stack.js'

const receiver = await receiveSpans(t)

t.test("a refused pushed request's echoed state and nonce are never logged or exported", async (t) => {
  const lines: string[] = []
  const stack = await startStack(t, {
    idp: { par: true },
    config: { logLevel: 'trace', accessLog: true, tracing: { enabled: true } },
    gateway: { logStream: { write: (line: string) => void lines.push(line) } },
  })
  const sent: Record<string, string | undefined> = {}
  stack.idp.answer('par', {
    status: 400,
    body: (params) => {
      sent.state = params.get('state') ?? undefined
      sent.nonce = params.get('nonce') ?? undefined
      return { error: 'invalid_request', error_description: `refused ${params}` }
    },
  })
  const start = await jarFetch(new CookieJar(), `${stack.gateway.url}/auth/login`)
  t.ok(start.status >= 400, `the login is refused (HTTP ${start.status})`)
  await stack.close() // flushes the exporter

  const exported = receiver.bodies.join('\n')
  const log = lines.join('')
  t.ok((sent.state?.length ?? 0) >= 16 && (sent.nonce?.length ?? 0) >= 16, 'the IdP was sent both')
  t.match(log, /"oauthError":"invalid_request"/, 'the refusal was logged')
  t.match(exported, /\/request"/, 'the pushed request was exported')
  for (const [what, value] of Object.entries({ ...sent, 'client secret': CLIENT_SECRET })) {
    t.notOk(log.includes(value!), `no ${what} in any log line`)
    t.notOk(exported.includes(value!), `no ${what} in any span`)
  }
})

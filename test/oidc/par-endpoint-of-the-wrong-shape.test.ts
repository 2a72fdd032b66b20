/**
 * A `pushed_authorization_request_endpoint` that is no URL (RFC 9126 §5:
 * a URL, https): a number, an object. `/readyz` said ready while every
 * sign-in answered 400, "the login response failed validation", before
 * the browser left for the IdP. It is read as not advertised, with a
 * warning naming it, as an optional member of the wrong shape may be: with
 * `par: auto` sign-in goes on without PAR; with `par: required`, or an IdP
 * that requires PAR, nothing can sign in, and `/readyz`, the sign-in page
 * and `check --online` all say so, naming the member.
 */
import t from 'tap'
import type { DevIdpQuirks } from '../../dev/idp.js'
import { checkOnline, devIdpForCheck } from '../helpers/check-online.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { jarFetch, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

type Rewrite = NonNullable<DevIdpQuirks['discoveryDocument']>

const parAs =
  (value: unknown, extra: Record<string, unknown> = {}): Rewrite =>
  (doc) => ({ ...doc, ...extra, pushed_authorization_request_endpoint: value })

const WARNING = 'the identity provider advertises a discovery member of the wrong shape'

for (const [shape, value] of [
  ['a number', 42],
  ['an object', { url: 'https://idp.example/par' }],
  ['a relative URL', '/request'],
] as const) {
  t.test(
    `${shape} with par: auto: not advertised, a warning names it, and sign-in goes without PAR`,
    async (t) => {
      const lines: Record<string, unknown>[] = []
      const stack = await startStack(t, {
        idp: { par: true, quirks: { discoveryDocument: parAs(value) } },
        config: { logLevel: 'info' },
        gateway: { logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
      })
      const base = stack.gateway.url
      t.match(
        lines.filter((line) => line.msg === WARNING),
        [{ level: 40, reason: /pushed_authorization_request_endpoint .*read as not advertised/ }],
      )
      t.equal(stack.gateway.app.gatehouse.oidc.metadata?.pushed_authorization_request_endpoint, undefined)
      t.equal((await jarFetch(new CookieJar(), `${base}/readyz`)).status, 200)
      const start = await jarFetch(new CookieJar(), `${base}/auth/login`)
      t.equal(start.status, 302, 'the browser goes to the IdP')
      t.notOk(new URL(start.location!).searchParams.has('request_uri'), 'with the request in the URL')
      t.equal((await login(base)).callback.status, 302, 'and the sign-in completes')
    },
  )
}

t.test('par: required: /readyz 503 and sign-in 503, naming the member; check --online fails', async (t) => {
  const stack = await startStack(t, {
    idp: { par: true, quirks: { discoveryDocument: parAs(42) } },
    config: { oidc: { par: 'required' } },
  })
  const base = stack.gateway.url
  const ready = await jarFetch(new CookieJar(), `${base}/readyz`)
  t.equal(ready.status, 503)
  t.match(ready.json(), { status: 'not_ready', checks: { idp: /pushed_authorization_request_endpoint/ } })
  const start = await jarFetch(new CookieJar(), `${base}/auth/login`)
  t.equal(start.status, 503, 'not 400: nothing about this sign-in is wrong')
  t.match(start.text, /Sign-in is misconfigured: .*pushed_authorization_request_endpoint/)

  const idp = await devIdpForCheck(t, { par: true, quirks: { discoveryDocument: parAs(42) } })
  const check = await checkOnline(idp.issuer, '  clientSecret: s3cret\n  par: required')
  t.equal(check.code, 1)
  t.match(
    check.out,
    /hint: the identity provider advertises pushed_authorization_request_endpoint as a number/,
  )
  t.match(check.out, /PAR \(RFC 9126\) +required +no +BLOCKING/)
})

t.test(
  'an IdP that requires PAR (RFC 9126 §5) and names no usable endpoint: nothing can sign in',
  async (t) => {
    const requiring = parAs(42, { require_pushed_authorization_requests: true })
    const stack = await startStack(t, {
      idp: { par: true, quirks: { discoveryDocument: requiring } },
      client: { requirePushedAuthorizationRequests: true },
    })
    const base = stack.gateway.url
    const ready = await jarFetch(new CookieJar(), `${base}/readyz`)
    t.equal(ready.status, 503)
    t.match(ready.json(), {
      checks: { idp: /require_pushed_authorization_requests.*pushed_authorization_request_endpoint/ },
    })
    const start = await jarFetch(new CookieJar(), `${base}/auth/login`)
    t.equal(start.status, 503, 'refused here, not by the IdP after the browser went there')

    const idp = await devIdpForCheck(t, { par: true, quirks: { discoveryDocument: requiring } })
    const check = await checkOnline(idp.issuer)
    t.equal(check.code, 1)
    t.match(check.out, /PAR \(RFC 9126\) +auto +required +BLOCKING/)
  },
)

t.test(
  'par: off against an IdP that advertises it requires PAR: refused here, as check --online does',
  async (t) => {
    const requiring: Rewrite = (doc) => ({
      ...doc,
      require_pushed_authorization_requests: true,
    })
    const stack = await startStack(t, {
      idp: { par: true, quirks: { discoveryDocument: requiring } },
      client: { requirePushedAuthorizationRequests: true },
      config: { oidc: { par: 'off' } },
    })
    const base = stack.gateway.url
    const ready = await jarFetch(new CookieJar(), `${base}/readyz`)
    t.equal(ready.status, 503)
    t.match(ready.json(), { checks: { idp: /par: off.*require_pushed_authorization_requests/ } })
    const start = await jarFetch(new CookieJar(), `${base}/auth/login`)
    t.equal(start.status, 503)
    t.match(start.text, /par: off/)
  },
)

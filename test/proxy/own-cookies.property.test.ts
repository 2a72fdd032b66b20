import secureSession from '@fastify/secure-session'
import fc from 'fast-check'
import fastify from 'fastify'
import t from 'tap'
import { OwnCookies } from '../../src/proxy/own-cookies.js'
import { stripCookies } from '../../src/proxy/request-headers.js'

const NAMES = ['gatehouse', 'gatehouse-login']
/** Each sign-in's cookie: this start, then its state's hash. */
const STARTS = ['gatehouse-login.']
const own = new OwnCookies(NAMES, STARTS)

/** Pieces of a Cookie header: our names in odd spellings, separators and whitespace. */
const piece = fc.constantFrom(
  'gatehouse',
  'GateHouse',
  'gatehouse-login',
  'gatehouse-login.',
  '.',
  '__Host-',
  '__Host-Http-',
  '__http-',
  '__secure-',
  'app',
  'x',
  '=',
  ';',
  ' ',
  '\t',
  'v',
  '%3D',
  '"',
)

t.test(
  'no Cookie header, once stripped, still holds a cookie the session plugin reads as ours',
  async (t) => {
    const app = fastify()
    await app.register(secureSession, { key: Buffer.alloc(32, 1), cookieName: 'gatehouse' })
    await app.ready()
    t.teardown(() => app.close())
    const parse = (header: string) => app.parseCookie(header)
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 24 }), (pieces) => {
        const header = pieces.join('')
        const stripped = stripCookies(header, own, parse)
        if (stripped === undefined) return true
        const read = Object.keys(parse(stripped))
        return (
          !read.some((name) => NAMES.includes(name) || STARTS.some((start) => name.startsWith(start))) &&
          !read.some((name) => own.owns(name))
        )
      }),
      { numRuns: 5_000 },
    )
    t.pass('5,000 generated headers')
  },
)

t.test('a Set-Cookie is ours exactly when the name a browser stores (RFC 6265bis §5.7) is', async (t) => {
  const ours = [
    'gatehouse=x',
    'gatehouse=x; Path=/api',
    ' gatehouse =x',
    'gatehouse\t=x',
    'GATEHOUSE=x',
    '__Host-gatehouse=x; Secure; Path=/',
    '__Host-Http-gatehouse=x; Secure; HttpOnly; Path=/',
    '__host-http-GATEHOUSE-login=x',
    '__Http-gatehouse=x',
    '__HOST-Gatehouse-Login=x',
    'gatehouse-login.AbCdEfGhIjKlMnOp=x; Path=/',
    '__Host-Http-GATEHOUSE-LOGIN.x=; Max-Age=0',
    ' gatehouse-login.x =1',
    '__Secure-gatehouse=x',
    '=gatehouse=x',
    '= gatehouse=x; Path=/',
    'gatehouse',
    'gatehouse; Path=/',
  ]
  const theirs = [
    'app_pref=1',
    'gatehouse_pref=1',
    'my-gatehouse=1',
    'x=gatehouse=1',
    'app=1; Path=/gatehouse',
    '__Host-app=1; Secure',
    '__Host-Http-app=1; Secure; HttpOnly',
    '__Host-Http-gatehouse-other=1',
    'gatehouse-login-x=1',
    'gatehouse-loginx.1=1',
    'x.gatehouse-login.1=1',
    '=other=1',
  ]
  for (const line of ours) t.ok(own.ownsSetCookie(line), JSON.stringify(line))
  for (const line of theirs) t.notOk(own.ownsSetCookie(line), JSON.stringify(line))
})

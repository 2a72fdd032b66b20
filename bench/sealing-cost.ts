/**
 * What sealing sessions costs in CPU, per operation, without Redis or HTTP
 * in the way: the work each request adds on top of what it did before.
 *
 *   npx tsx bench/sealing-cost.ts
 *
 * - every request: the session key read from the cookie (one HKDF for the
 *   record id), and, on a local-cache hit, one constant-time key compare;
 * - a request that reads Redis (a local-cache miss): also the two sealed
 *   fields opened (AES-256-GCM) and parsed;
 * - a refresh: the token set sealed once; a login: both fields sealed.
 *
 * The session is typical: a 1,024-byte JWT access token, a 64-byte refresh
 * token, a 1,100-byte ID token and the userinfo claims of bench/session-fixture.ts.
 * Each figure is the median of 15 batches, in CPU microseconds per operation.
 */
import { performance } from 'node:perf_hooks'
import { loginFields, openField, sealField } from '../src/session/sealed-fields.js'
import { SessionKey } from '../src/session/session-key.js'
import { benchSession } from './session-fixture.js'

const now = Date.now()
const session = benchSession(1, now, 'userinfo', {
  accessToken: `eyJ${'x'.repeat(1_021)}`,
  accessTokenExpiresAt: now + 300_000,
  refreshToken: 'r'.repeat(64),
  idToken: `eyJ${'i'.repeat(1_097)}`,
})
const cookie = session.key.toCookie()
const login = sealField(session, 'login', loginFields(session))
const tokens = sealField(session, 'tokens', session.tokens)
const plainLogin = JSON.stringify(loginFields(session))
const plainTokens = JSON.stringify(session.tokens)

/** CPU microseconds per call of `work`, the median of 15 batches of `n`. */
function cost(work: () => unknown, n = 5_000): number {
  for (let i = 0; i < n; i++) work()
  const batches: number[] = []
  for (let b = 0; b < 15; b++) {
    const start = process.cpuUsage()
    for (let i = 0; i < n; i++) work()
    const used = process.cpuUsage(start)
    batches.push((used.user + used.system) / n)
  }
  return batches.sort((a, c) => a - c)[7]!
}

const round = (us: number) => Number(us.toFixed(2))
const figures = {
  keyFromCookie: round(cost(() => SessionKey.fromCookie(cookie))),
  keyCompare: round(cost(() => session.key.equals(session.key))),
  openBothFields: round(
    cost(() => {
      openField(session, 'login', login)
      openField(session, 'tokens', tokens)
    }),
  ),
  parseBothFieldsUnsealed: round(
    cost(() => {
      JSON.parse(plainLogin)
      JSON.parse(plainTokens)
    }),
  ),
  sealTokens: round(cost(() => sealField(session, 'tokens', session.tokens))),
  sealBothFields: round(
    cost(() => {
      sealField(session, 'login', loginFields(session))
      sealField(session, 'tokens', session.tokens)
    }),
  ),
  bytes: {
    login: { plain: plainLogin.length, sealed: login.length },
    tokens: { plain: plainTokens.length, sealed: tokens.length },
  },
}
console.log(
  JSON.stringify({ node: process.version, at: new Date(performance.timeOrigin).toISOString(), ...figures }),
)

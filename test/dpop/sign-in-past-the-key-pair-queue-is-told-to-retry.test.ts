import t from 'tap'
import { generateDpopKey, MAX_KEY_PAIRS_WAITING } from '../../src/dpop/keys.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { jarFetch } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

/**
 * Every sign-in start on a DPoP provider waits for its key pair, made one at
 * a time per process, and anyone may start one. With the queue full, the
 * next `/auth/login` is answered at once with the catalogue's 503 and
 * `Retry-After`, not held behind them; the pairs queued are all made, and a
 * sign-in once they are is sent to the IdP. The queue is filled past its
 * bound by pairs of the kind never refused (a client-credentials token's),
 * PS256 at about 50 ms each, so it stays full for about a second after the
 * bound however slowly the request arrives.
 */
const PAST = 20

t.test(
  'a sign-in start past the key-pair queue gets a 503 to retry, and the queued pairs are made',
  async (t) => {
    const stack = await startStack(t, { config: { oidc: { dpop: true } } })
    const base = stack.gateway.url
    const queued = Array.from({ length: MAX_KEY_PAIRS_WAITING + PAST }, () =>
      generateDpopKey('PS256', 'client'),
    )
    const refused = await jarFetch(new CookieJar(), `${base}/auth/login`)
    t.equal(refused.status, 503, 'the sign-in start is refused while the queue is full')
    t.ok(Number(refused.headers.get('retry-after')) >= 1, 'with Retry-After')
    t.match(refused.text, /dpop_keys_busy|DPoP key/i, 'saying why')
    const made = await Promise.all(queued)
    t.equal(
      made.filter((key) => key.alg === 'PS256' && key.jwk.kty === 'RSA').length,
      MAX_KEY_PAIRS_WAITING + PAST,
    )
    t.equal(
      (await jarFetch(new CookieJar(), `${base}/auth/login`)).status,
      302,
      'and a sign-in after them starts',
    )
  },
)

import { exportJWK, generateKeyPair } from 'jose'
import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, route } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { signLogoutToken } from '../helpers/logout.js'
import { startStack } from '../helpers/stack.js'

/**
 * Back-Channel Logout 1.0 §2.5: the OP POSTs one `logout_token` in an
 * `application/x-www-form-urlencoded` form. A form that carried it twice
 * was read as its last value (so which token the gateway acted on was not
 * the one a reader of the request would say), and a JSON body
 * `{"logout_token": …}` was parsed by Fastify's default parser and carried
 * out. Both are requests §2.5 does not define: 400 `invalid_request`
 * (§2.8), never cached, and nothing is ended or used up.
 */
t.test(
  'a logout token sent twice in the form, or in a body that is not a form, is refused and ends nothing',
  async (t) => {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true })
    const signingKey = { ...(await exportJWK(privateKey)), kid: 'idp-key', alg: 'RS256', use: 'sig' }
    const lines: Record<string, unknown>[] = []
    const { idp, gateway } = await startStack(t, {
      idp: { signingKey },
      backchannelLogout: true,
      routes: (upstream) => [route('/api/orders', upstream)],
      config: { logLevel: 'warn' },
      gateway: { logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
    })
    const base = gateway.url
    const { jar } = await login(base, { user: 'alice' })
    const sign = () =>
      signLogoutToken(
        { issuer: idp.issuer, audience: CLIENT_ID, key: privateKey, kid: 'idp-key' },
        { sub: 'alice' },
      )
    const token = await sign()
    const other = await sign()
    const post = (path: string, body: BodyInit, contentType: string | undefined) =>
      jarFetch(new CookieJar(), `${base}${path}`, {
        method: 'POST',
        body,
        headers: contentType === undefined ? {} : { 'content-type': contentType },
      })
    const form = 'application/x-www-form-urlencoded'

    const cases: [string, BodyInit, string | undefined][] = [
      [
        'the same token twice',
        new URLSearchParams([
          ['logout_token', token],
          ['logout_token', token],
        ]),
        form,
      ],
      [
        'two tokens',
        new URLSearchParams([
          ['logout_token', other],
          ['logout_token', token],
        ]),
        form,
      ],
      [
        'an empty one besides',
        new URLSearchParams([
          ['logout_token', token],
          ['logout_token', ''],
        ]),
        form,
      ],
      ['JSON', JSON.stringify({ logout_token: token }), 'application/json'],
      ['JSON with a charset', JSON.stringify({ logout_token: token }), 'application/json; charset=utf-8'],
      ['plain text', `logout_token=${token}`, 'text/plain'],
      ['a multipart form', `logout_token=${token}`, 'multipart/form-data; boundary=x'],
      ['no media type', new TextEncoder().encode(`logout_token=${token}`), undefined],
    ]
    for (const path of ['/auth/backchannel-logout', '/auth/backchannel-logout/default']) {
      for (const [name, body, contentType] of cases) {
        const res = await post(path, body, contentType)
        t.equal(res.status, 400, `${name} at ${path}`)
        t.match(res.json(), { error: 'invalid_request' }, name)
        t.equal(res.headers.get('cache-control'), 'no-store', `${name}: §2.8 no-store`)
        t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, `${name}: nothing was ended`)
      }
    }
    t.match(
      lines.filter((line) => line.msg === 'logout token refused'),
      [
        { level: 40, reason: /more than once/ },
        { level: 40, reason: /application\/x-www-form-urlencoded/ },
      ],
      'the operator hears why, once a minute per reason',
    )
    t.notOk(JSON.stringify(lines).includes(token), 'never the token itself')

    t.equal(
      (await post('/auth/backchannel-logout', new URLSearchParams({ logout_token: token }), form)).status,
      200,
      'the token, sent once in a form, is carried out: no refusal used it up',
    )
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 401, 'the session ended')
  },
)

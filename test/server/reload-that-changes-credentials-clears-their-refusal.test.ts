/**
 * A refusal of the gateway's credentials is kept per provider until that
 * provider accepts them again. A reload that fixed them (the secret
 * corrected) kept the refusal of the old ones: /readyz said the IdP
 * "refuses the gateway's client credentials" and the gauge stayed 1, an
 * alert firing on credentials no longer in use, until some user's call of
 * the same kind happened to go through (a sign-in, a refresh, a logout:
 * at night, hours later). A provider whose credentials a reload changes
 * starts with no refusal; one whose credentials stay keeps its own.
 */
import t from 'tap'
import { login } from '../helpers/login.js'
import { configText, startReloadable } from '../helpers/reloadable.js'

t.test("a reload that changes a provider's credentials clears the refusal of the old ones", async (t) => {
  const stack = await startReloadable(t, () => [], {
    input: (issuer) => ({
      identityProviders: [
        { name: 'good', issuer },
        { name: 'bad', issuer, clientSecret: 'not-the-registered-secret' },
        { name: 'worse', issuer, clientSecret: 'not-the-registered-secret-either' },
      ],
    }),
  })
  const readyz = async () =>
    (await (await fetch(`${stack.url}/readyz`)).json()) as { checks: { clientAuth: unknown } }
  const gauge = async () =>
    /^gatehouse_idp_client_refused (\d+)$/m.exec(
      await stack.running.app.gatehouse.metrics.registry.metrics(),
    )?.[1]
  for (const idp of ['bad', 'worse'])
    t.equal((await login(stack.url, { params: { idp } })).callback.status, 500, `${idp} is refused`)
  t.match((await readyz()).checks.clientAuth, /code_exchange at bad \(invalid_client\)/)
  t.match((await readyz()).checks.clientAuth, /code_exchange at worse \(invalid_client\)/)
  t.equal(await gauge(), '1')

  // bad's secret corrected (the registered one, the default); worse's left as it is.
  const [good, bad, worse] = stack.input.identityProviders ?? []
  const { clientSecret: _, ...corrected } = bad!
  stack.configMap.write(configText({ ...stack.input, identityProviders: [good!, corrected, worse!] }))
  t.equal((await stack.running.reload()).result, 'applied')
  const { clientAuth } = (await readyz()).checks
  t.notMatch(clientAuth, /at bad/, "bad's refusal was of credentials no longer in use")
  t.match(
    clientAuth,
    /code_exchange at worse \(invalid_client\)/,
    "worse's credentials are the same: still refused",
  )

  stack.configMap.write(configText({ ...stack.input, identityProviders: [good!, corrected] }))
  t.equal((await stack.running.reload()).result, 'applied')
  t.equal((await readyz()).checks.clientAuth, 'ok')
  t.equal(await gauge(), '0', 'the gauge follows')
  t.equal((await login(stack.url, { params: { idp: 'bad' } })).callback.status, 302, 'bad signs in now')
})

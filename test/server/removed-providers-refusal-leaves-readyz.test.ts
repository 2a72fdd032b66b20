/**
 * A reload that removes a provider which refused the gateway's credentials
 * takes its refusal off /readyz and the gauge: refusals are kept per
 * provider, cleared only by that provider accepting again, and a removed
 * provider is asked nothing again, so without this it stayed "refused"
 * (degraded) for the life of the process.
 */
import t from 'tap'
import { login } from '../helpers/login.js'
import { configText, startReloadable } from '../helpers/reloadable.js'

t.test(
  "a reload that removes a provider refusing the gateway's credentials clears its refusal",
  async (t) => {
    const stack = await startReloadable(t, () => [], {
      input: (issuer) => ({
        identityProviders: [
          { name: 'good', issuer },
          { name: 'bad', issuer, clientSecret: 'not-the-registered-secret' },
        ],
      }),
    })
    const readyz = async () =>
      (await (await fetch(`${stack.url}/readyz`)).json()) as { checks: { clientAuth: unknown } }
    const { callback } = await login(stack.url, { params: { idp: 'bad' } })
    t.equal(callback.status, 500, 'bad refuses the code exchange')
    t.match((await readyz()).checks.clientAuth, /code_exchange at bad \(invalid_client\)/)

    const { identityProviders = [] } = stack.input
    const applied = await stack.running.reload()
    t.equal(applied.result, 'unchanged')
    stack.configMap.write(configText({ ...stack.input, identityProviders: identityProviders.slice(0, 1) }))
    t.equal((await stack.running.reload()).result, 'applied')
    t.equal((await readyz()).checks.clientAuth, 'ok', 'no provider of the config refuses')
  },
)

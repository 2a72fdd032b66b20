import { type Browser, chromium, type Page } from 'playwright-core'
import type { Test } from 'tap'
import { type DevIdpOptions, startDevIdp } from '../../dev/idp.js'
import type { GatehouseConfig } from '../../src/config/types.js'
import { CLIENT_ID, CLIENT_SECRET, startGateway } from './gateway.js'
import { onFreePort } from './ports.js'

/** Debian's `chromium` package, or `CHROMIUM_PATH`. */
export const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** What every test's Chromium runs with: no sandbox (CI runs as root), no GPU, no calls home. */
const BASE_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run']

/** A headless Chromium, closed when `t` ends; `args` are added to the base ones. */
export async function launchChromium(t: Test, args: readonly string[] = []): Promise<Browser> {
  const browser = await chromium.launch({ executablePath, args: [...BASE_ARGS, ...args] })
  t.teardown(() => browser.close())
  return browser
}

/**
 * Signs `user` in on `page`, from the gateway's login at `base` back to
 * `returnTo`, through the test IdP's form; the strict IdP asks for consent
 * (prompt=consent, OIDC Core §11), which the user gives. Resolves once the
 * page is back at `returnTo`.
 */
export async function signInInChromium(
  page: Page,
  base: string,
  returnTo: string,
  user = 'alice',
): Promise<void> {
  await page.goto(`${base}/auth/login?returnTo=${encodeURIComponent(returnTo)}`)
  await page.locator('input[name="login"]').waitFor()
  await page.fill('input[name="login"]', user)
  await page.fill('input[name="password"]', 'any')
  await page.click('button[type="submit"]')
  await page.locator('input[name="prompt"][value="consent"]').waitFor({ state: 'attached' })
  await Promise.all([page.waitForURL(`${base}${returnTo}`), page.click('button[type="submit"]')])
}

/**
 * The gateway on `localhost` and the dev IdP on `127.0.0.1`: two sites, as
 * in production, so the IdP's redirect to the callback is cross-site (and a
 * `SameSite=Strict` cookie does not come with it). `config` makes the
 * gateway's config from its public URL and the IdP's issuer; both are
 * closed when `t` ends.
 */
export async function gatewayOnAnotherSiteThanIdp(
  t: Test,
  config: (base: string, issuer: string, port: number) => GatehouseConfig,
  idpOptions: Partial<Omit<DevIdpOptions, 'clients'>> = {},
) {
  const started = await onFreePort(async (port) => {
    const base = `http://localhost:${port}`
    const idp = await startDevIdp({
      ...idpOptions,
      clients: [
        { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [`${base}/auth/callback`] },
      ],
    })
    try {
      return { base, idp, gateway: await startGateway(config(base, idp.issuer, port)) }
    } catch (err) {
      await idp.close()
      throw err
    }
  })
  t.teardown(() => started.idp.close())
  t.teardown(() => started.gateway.close())
  return started
}

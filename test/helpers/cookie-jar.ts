/** Just enough of a browser's cookie jar for loopback tests: one jar per origin (host:port). */
export class CookieJar {
  readonly #byOrigin = new Map<string, Map<string, string>>()

  header(url: string | URL): string | undefined {
    const cookies = this.#byOrigin.get(new URL(url).host)
    if (!cookies || cookies.size === 0) return undefined
    return [...cookies].map(([name, value]) => `${name}=${value}`).join('; ')
  }

  store(url: string | URL, setCookie: string[]): void {
    const host = new URL(url).host
    let cookies = this.#byOrigin.get(host)
    if (!cookies) {
      cookies = new Map()
      this.#byOrigin.set(host, cookies)
    }
    for (const line of setCookie) {
      const [pair, ...attributes] = line.split(';')
      const eq = pair!.indexOf('=')
      if (eq <= 0) continue
      const name = pair!.slice(0, eq).trim()
      const value = pair!.slice(eq + 1).trim()
      const attribute = (wanted: string) => {
        for (const a of attributes) {
          const eq = a.indexOf('=')
          const key = (eq === -1 ? a : a.slice(0, eq)).trim().toLowerCase()
          if (key === wanted) return eq === -1 ? '' : a.slice(eq + 1).trim()
        }
        return undefined
      }
      // RFC 6265 §5.3 step 3: Max-Age wins over Expires.
      const maxAge = attribute('max-age')
      const expires = attribute('expires')
      const expired =
        maxAge !== undefined
          ? Number(maxAge) <= 0
          : expires !== undefined && Date.parse(expires) <= Date.now()
      if (expired || value === '') cookies.delete(name)
      else cookies.set(name, value)
    }
  }

  get(url: string | URL, name: string): string | undefined {
    return this.#byOrigin.get(new URL(url).host)?.get(name)
  }

  set(url: string | URL, name: string, value: string): void {
    this.store(url, [`${name}=${value}`])
  }

  delete(url: string | URL, name: string): void {
    this.#byOrigin.get(new URL(url).host)?.delete(name)
  }
}

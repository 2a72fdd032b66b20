/*
 * How upstreams may read a request path that the router matched as written:
 * the proxy refuses a spelling of a deeper route's path (proxy/path-check.ts),
 * and the config check two routes that read as one (config/route-rules.ts).
 */

const PERCENT = /%([0-9A-Fa-f]{2})/g

/**
 * How many times a path is decoded, the first included: the upstream's, and
 * those of proxies before it. Each is a pass over the whole path, and
 * `%25` + `25` n times takes n of them to settle: decoding while anything
 * decoded cost a 14 KB target some 240 ms of the event loop.
 */
export const DECODES = 4

/** `text` with its `%XX` escapes decoded bytewise (Latin-1), again while any decode, at most `rounds` times. */
export function decodeEscapes(text: string, rounds: number): string {
  let decoded = text
  for (let round = 0; round < rounds; round++) {
    const next = decoded.replace(PERCENT, hexChar)
    if (next === decoded) break
    decoded = next
  }
  return decoded
}

function hexChar(_match: string, hex: string): string {
  return String.fromCharCode(Number.parseInt(hex, 16))
}

/**
 * The path as the most liberal upstream reads it, lower-cased: escapes
 * decoded as often as anything decodes (a proxy on the way that decodes,
 * then the upstream), at most `DECODES` times in a path that
 * the proxy's path check lets through, as UTF-8; cut at a decoded `?` or
 * `#`; `\` as `/` (WHATWG URL, IIS); `;` path parameters dropped (Tomcat,
 * Spring: RFC 3986 §3.3 leaves them to the scheme); trailing dots and
 * spaces of a segment dropped (IIS, Windows file names); `//` runs merged
 * (nginx's and Envoy's merge_slashes, Spring); letters folded as Express's
 * and ASP.NET Core's case-insensitive routing folds them (`ſ` as `s`, `ı`
 * as `i`).
 */
export function upstreamReading(path: string): string {
  let read = path
  if (read.includes('%')) {
    read = decodeEscapes(read, DECODES)
    const end = read.search(/[?#]/)
    if (end !== -1) read = read.slice(0, end)
    // The escapes decoded bytewise: read them as the UTF-8 text they spell,
    // whose letters fold to ASCII ones only through upper case (`ſ`, `ı`).
    if (/[\x80-\xff]/.test(read)) read = Buffer.from(read, 'latin1').toString('utf8').toUpperCase()
  }
  // Each step only where it has something to do: the reading of an
  // ordinary path with a capital letter is its lower case.
  if (read.includes('\\')) read = read.replaceAll('\\', '/')
  if (read.includes(';')) read = read.replace(/;[^/]*/g, '')
  if (read.includes('.') || read.includes(' ')) read = read.replace(/[. ]+(?=\/|$)/g, '')
  if (read.includes('//')) read = read.replace(/\/{2,}/g, '/')
  return read.toLowerCase()
}

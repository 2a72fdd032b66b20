/**
 * Which component of a proxied request a profiled function belongs to, by
 * its file, for `bench/components.ts`. Gatehouse's own code is recognised
 * in the sources (`src/`, run through tsx) and in the compiled build
 * (`dist/`, `BENCH_GATEHOUSE=dist`), both of this tree only: packages ship
 * `dist/` folders of their own.
 */
const OURS = [new URL('../src/', import.meta.url).href, new URL('../dist/', import.meta.url).href]

/** The folder of Gatehouse's tree (`session/`, `proxy/`, …) a profiled function's URL is in, or `undefined`. */
function ourFolder(url: string): string | undefined {
  const base = OURS.find((prefix) => url.startsWith(prefix))
  return base === undefined ? undefined : url.slice(base.length)
}

function ours(url: string, folders: RegExp): boolean {
  const folder = ourFolder(url)
  return folder !== undefined && folders.test(folder)
}

/** The components, in order: the first that matches wins. */
const COMPONENTS: readonly (readonly [string, (url: string, fn: string) => boolean])[] = [
  ['garbage collection', (_, fn) => fn === '(garbage collector)'],
  ['V8 and Node native code, JIT', (url, fn) => url === '' && fn === '(program)'],
  // Native functions called from JavaScript: above all the socket writes
  // (`writev`) and the encoding of header strings (`writeLatin1String`).
  ['native calls: socket writes, string encoding', (url) => url === ''],
  [
    '@fastify/secure-session, libsodium, @fastify/cookie',
    (url) => /secure-session|sodium|@fastify\/cookie|node_modules\/cookie\//.test(url),
  ],
  ['@fastify/http-proxy', (url) => /@fastify\/(http-proxy|reply-from)/.test(url)],
  [
    'fastify core and router',
    (url) =>
      /node_modules\/(fastify|find-my-way|avvio|light-my-request|fast-json-stringify|@fastify\/(error|ajv-compiler|fast-json-stringify-compiler|forwarded|proxy-addr)|fast-querystring|toad-cache|abstract-logging|process-warning|safe-regex2|ret|fastify-plugin|rfdc|fast-uri|fast-decode-uri-component)\//.test(
        url,
      ),
  ],
  ['undici', (url) => url.includes('node_modules/undici/')],
  ['pino (logging)', (url) => /node_modules\/(pino|@pinojs|sonic-boom|thread-stream)/.test(url)],
  ['gatehouse src/session', (url) => ours(url, /^session\//)],
  ['gatehouse src/proxy', (url) => ours(url, /^proxy\//)],
  ['gatehouse src/server, src/guards, src/http', (url) => ours(url, /^(server|guards|http)\//)],
  ['gatehouse src/tokens', (url) => ours(url, /^tokens\//)],
  ['gatehouse src (other)', (url) => ourFolder(url) !== undefined],
  ['node:http', (url) => /^node:_http_|^node:http/.test(url)],
  [
    'node: sockets, streams, timers, events',
    (url) =>
      /^node:(net|stream|internal\/(streams|stream_base|timers|net|event|async_hooks|process\/task_queues))|^node:events|^node:timers/.test(
        url,
      ),
  ],
  ['node: other', (url) => url.startsWith('node:')],
  ['other', () => true],
]

/** The component of a function from a V8 CPU profile, by its call frame's URL and name. */
export function componentOf(url: string, functionName: string): string {
  return COMPONENTS.find(([, match]) => match(url, functionName))![0]
}

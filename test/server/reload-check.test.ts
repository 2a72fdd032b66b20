import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import {
  checkOffThread,
  checkReload,
  INLINE_CHECK_BYTES,
  ReloadChecker,
  type ReloadCheckInput,
} from '../../src/server/reload-check.js'
import { CONFIG_ENV, MINIMAL_CONFIG } from '../helpers/config-problems.js'

const env = CONFIG_ENV
const minimal = MINIMAL_CONFIG
const running = parseConfig(minimal, 'routes.yaml', env)
const input = (text: string): ReloadCheckInput => ({
  bytes: Buffer.from(text),
  file: 'routes.yaml',
  env,
  running,
})
const checker = new ReloadChecker()
/** Past the size checked on the event loop: padded with a comment. */
const large = (text: string) => `${text}#${'x'.repeat(INLINE_CHECK_BYTES)}\n`

t.test(
  'a large file gets the verdict on its own thread that it gets here, frozen as loadConfig gives it',
  async (t) => {
    const changed = large(
      minimal.replace('/api/orders', '/api/new').replace('  publicUrl', '  port: 4000\n  publicUrl'),
    )
    const there = await checker.check(input(changed))
    t.same(there, checkReload(input(changed)))
    t.match(there, {
      result: 'valid',
      restart: [{ path: 'server.port', line: 2 }],
      config: { routes: [{ path: '/api/new' }] },
    })
    t.ok(there.result === 'valid' && Object.isFrozen(there.config.routes[0]), 'frozen')

    const bad = large(minimal.replace('clientId: my-bff', 'clientId: 12e3\n  typo: 1'))
    t.same(await checker.check(input(bad)), checkReload(input(bad)))
    t.match(await checker.check(input(bad)), {
      result: 'invalid',
      problems: [
        { path: 'oidc.clientId', line: 5 },
        { path: 'oidc.typo', line: 6 },
      ],
    })
  },
)

t.test('a check that needs more than its heap, or its time, is refused; the process goes on', async (t) => {
  // 1 MB of blank lines is within every bound of the text, and takes
  // YAML's parser about 150 MB.
  const blank = input(minimal + '\n'.repeat(1_000_000))
  t.same(await checkOffThread(blank, { heapMb: 32, timeout: 60_000 }), {
    result: 'invalid',
    problems: [
      {
        path: '',
        message: 'checking the file took more than the 32 MiB of memory it may; a config takes a few',
      },
    ],
  })
  t.same(await checkOffThread(input(large(minimal)), { heapMb: 256, timeout: 1 }), {
    result: 'invalid',
    problems: [{ path: '', message: 'checking the file took longer than 0.001 s; it was not applied' }],
  })
  t.match(
    await checkOffThread(input(large(minimal)), { heapMb: 256, timeout: 60_000 }),
    { result: 'valid' },
    'the next one runs',
  )
})

t.test(
  'a variable the reloaded file names and the environment lacks: a reload cannot see one set since the start, and says so',
  async (t) => {
    // The rotation as an operator tries it: the new secret put in the pod's
    // environment, which the running process never sees.
    const rotated = minimal
      .replace('secret: ${SESSION_SECRET}', 'secrets: ["${NEW_SESSION_SECRET}", "${SESSION_SECRET}"]')
      .replace('http://orders:8080', '${ORDERS_URL}')
    const check = checkReload(input(rotated))
    t.match(check, {
      result: 'invalid',
      problems: [
        {
          path: 'session.secrets[0]',
          line: 8,
          message:
            'environment variable NEW_SESSION_SECRET is not set in the environment this gateway started with, which a reload reads and never sees change (a secret: set it and restart the gateway)',
        },
        {
          path: 'routes[0].upstream',
          line: 11,
          message:
            'environment variable ORDERS_URL is not set in the environment this gateway started with, which a reload reads and never sees change (set it and restart the gateway, or use ${ORDERS_URL:-default} for a default)',
        },
      ],
    })
    t.same(await checkOffThread(input(rotated)), check, 'the same on a thread of its own')
    t.throws(
      () => parseConfig(rotated, 'routes.yaml', env),
      /NEW_SESSION_SECRET is not set \(a secret: set it in the environment\)/,
      'at the start, setting it is all it takes',
    )
  },
)

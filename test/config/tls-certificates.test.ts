import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { main } from '../../src/cli/main.js'
import { ConfigError } from '../../src/config/errors.js'
import { loadConfig } from '../../src/config/load.js'
import { readTls } from '../../src/config/tls-material.js'
import { makePki, tlsClientAuthConfig } from '../helpers/certificates.js'

const env = { SESSION_SECRET: 'x'.repeat(32) }

const configWith = tlsClientAuthConfig

function problems(file: string, vars: NodeJS.ProcessEnv = env): string[] {
  try {
    loadConfig(file, vars)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return err.problems.map((p) => `${p.line} ${p.path}: ${p.message}`)
  }
  throw new Error('expected a ConfigError')
}

t.test('a good certificate: read once, with what the start-up log and metric need', async (t) => {
  const pki = makePki(t)
  const client = pki.issue('gatehouse-client')
  const file = configWith(
    pki.dir,
    `  tls:\n    cert: { file: gatehouse-client.crt }\n    key: { pem: "\${OIDC_TLS_KEY}" }\n    ca: { file: ${pki.ca.certFile} }`,
  )
  const config = loadConfig(file, { ...env, OIDC_TLS_KEY: client.key })
  t.equal(config.oidc.tls?.cert, client.cert, 'a relative file is read from beside the config file')
  t.equal(config.oidc.tls?.key, client.key, 'PEM from the environment')
  t.equal(config.oidc.tls?.ca, pki.ca.cert)
  t.match(config.oidc.tls?.certificate, { source: 'gatehouse-client.crt', subject: 'CN=gatehouse-client' })
  t.ok(config.oidc.tls!.certificate!.notAfter > Date.now(), 'its expiry')
  t.equal(config.oidc.clientSecret, undefined)
})

t.test('a FIFO or a device at a certificate or key path is refused at once, by name', async (t) => {
  const pki = makePki(t)
  execFileSync('mkfifo', [join(pki.dir, 'pipe.crt')])
  t.same(
    problems(configWith(pki.dir, '  tls:\n    cert: { file: pipe.crt }\n    key: { file: /dev/zero }')),
    [
      '8 oidc.tls.cert.file: pipe.crt is a FIFO (named pipe), not a regular file: a certificate or key file must be a regular file or a symlink to one',
      '9 oidc.tls.key.file: /dev/zero is a character device, not a regular file: a certificate or key file must be a regular file or a symlink to one',
    ],
  )
})

t.test('check names the file and the reason: missing, expired, not its key, not PEM', async (t) => {
  const pki = makePki(t)
  const client = pki.issue('gatehouse-client')
  const other = pki.issue('someone-else')
  pki.selfSigned('old', { expired: true })

  t.same(problems(configWith(pki.dir, '  tls:\n    cert: { file: nope.crt }\n    key: { file: nope.key }')), [
    '8 oidc.tls.cert.file: cannot read nope.crt: file not found',
    '9 oidc.tls.key.file: cannot read nope.key: file not found',
  ])
  t.same(
    problems(
      configWith(pki.dir, '  tls:\n    cert: { file: nope.crt }\n    key: { file: gatehouse-client.key }'),
    ),
    ['8 oidc.tls.cert.file: cannot read nope.crt: file not found'],
    'a file that cannot be read is the one problem: its option is there',
  )
  t.same(
    problems(
      configWith(pki.dir, '  tls:\n    cert: { file: gatehouse-client.crt }\n    key: { file: nope.key }'),
    ),
    ['9 oidc.tls.key.file: cannot read nope.key: file not found'],
  )
  t.same(problems(configWith(pki.dir, `  tls:\n    cert: { file: old.crt }\n    key: { file: old.key }`)), [
    '8 oidc.tls.cert.file: old.crt: the certificate expired on 2020-01-02T00:00:00.000Z',
  ])
  t.same(
    problems(
      configWith(
        pki.dir,
        `  tls:\n    cert: { file: gatehouse-client.crt }\n    key: { file: ${other.keyFile} }`,
      ),
    ),
    [
      `9 oidc.tls.key.file: ${other.keyFile} is not the private key of the certificate in gatehouse-client.crt`,
    ],
  )
  t.same(
    problems(
      configWith(
        pki.dir,
        '  tls:\n    cert: { pem: "${OIDC_TLS_CERT}" }\n    key: { file: gatehouse-client.key }',
      ),
      {
        ...env,
        OIDC_TLS_CERT: client.key,
      },
    ),
    ['8 oidc.tls.cert.pem: is not a PEM certificate'],
    'a key where the certificate belongs',
  )
  t.same(problems(configWith(pki.dir, '  tls:\n    cert: { file: gatehouse-client.crt }')), [
    '7 oidc.tls.key: is required with cert',
  ])
  t.same(problems(configWith(pki.dir, '')), [
    '3 oidc.tls.cert: is required when clientAuth is tls_client_auth',
  ])
  t.same(
    problems(
      configWith(
        pki.dir,
        `  tls:\n    cert: { file: gatehouse-client.crt }\n    key: { file: gatehouse-client.key }\n    ca: { file: gatehouse-client.key }`,
      ),
    ),
    ['10 oidc.tls.ca.file: gatehouse-client.key is not a PEM certificate (or bundle of them)'],
  )

  // A chain whose intermediate has expired fails the handshake as surely as an expired leaf.
  const old = pki.selfSigned('old-intermediate', { expired: true })
  writeFileSync(
    join(pki.dir, 'chain.crt'),
    readFileSync(client.certFile, 'utf8') + readFileSync(old.certFile, 'utf8'),
  )
  t.same(
    problems(
      configWith(pki.dir, `  tls:\n    cert: { file: chain.crt }\n    key: { file: ${client.keyFile} }`),
    ),
    [
      '8 oidc.tls.cert.file: chain.crt: certificate 2 of the chain (CN=old-intermediate): the certificate expired on 2020-01-02T00:00:00.000Z',
    ],
  )
  // An encrypted key, in both PEM forms: PKCS#8 and OpenSSL's traditional one.
  for (const [file, args] of [
    ['enc-pkcs8.key', ['pkcs8', '-topk8', '-v2', 'aes-256-cbc']],
    ['enc-traditional.key', ['ec', '-aes256']],
  ] as const) {
    execFileSync('openssl', [...args, '-in', client.keyFile, '-passout', 'pass:secret', '-out', file], {
      cwd: pki.dir,
      stdio: 'pipe',
    })
    t.same(
      problems(
        configWith(pki.dir, `  tls:\n    cert: { file: ${client.certFile} }\n    key: { file: ${file} }`),
      ),
      [
        `9 oidc.tls.key.file: ${file} is an encrypted private key; give it unencrypted (keep the file readable by Gatehouse only)`,
      ],
      file,
    )
  }

  const out: string[] = []
  const code = await main(
    [
      'check',
      '--config',
      configWith(pki.dir, `  tls:\n    cert: { file: old.crt }\n    key: { file: old.key }`),
    ],
    { stdout: (l) => out.push(l), stderr: (l) => out.push(l), env, start: async () => {} },
  )
  t.equal(code, 1, '`gatehouse check` fails')
  t.match(
    out.join('\n'),
    /gatehouse-\w+\.yaml:8 oidc\.tls\.cert\.file: old\.crt: the certificate expired on 2020-01-02/,
  )
})

t.test(
  'PEM from an unset variable: the variable is the one problem, for the certificate and the key',
  async (t) => {
    const pki = makePki(t)
    pki.issue('gatehouse-client')
    t.same(
      problems(configWith(pki.dir, '  tls:\n    cert: { pem: "${NO_CERT}" }\n    key: { pem: "${NO_KEY}" }')),
      [
        '8 oidc.tls.cert.pem: environment variable NO_CERT is not set (or use ${NO_CERT:-default} for a default)',
        '9 oidc.tls.key.pem: environment variable NO_KEY is not set (a secret: set it in the environment)',
      ],
      'no second line saying the option matches no form: what it holds is not what was written',
    )
    t.same(
      problems(
        configWith(
          pki.dir,
          '  tls:\n    cert: { pem: "${NO_CERT}" }\n    key: { file: gatehouse-client.key }',
        ),
      ),
      [
        '8 oidc.tls.cert.pem: environment variable NO_CERT is not set (or use ${NO_CERT:-default} for a default)',
      ],
    )
  },
)

t.test('PEM with \\n escapes for line breaks: refused, with the cause named', async (t) => {
  const pki = makePki(t)
  const client = pki.issue('gatehouse-client')
  const escaped = (pem: string) => pem.trimEnd().replace(/\n/g, '\\n')
  const refused = problems(
    configWith(
      pki.dir,
      '  tls:\n    cert: { pem: "${C}" }\n    key: { pem: "${K}" }\n    ca: { pem: "${A}" }',
    ),
    { ...env, C: escaped(client.cert), K: escaped(client.key), A: escaped(pki.ca.cert) },
  )
  const cause =
    '(it holds the characters \\n where its line breaks belong: give the variable real line breaks, for example VAR="$(cat file.pem)")'
  t.same(refused, [
    `8 oidc.tls.cert.pem: is not a PEM certificate ${cause}`,
    `9 oidc.tls.key.pem: is not a PEM private key ${cause}`,
    `10 oidc.tls.ca.pem: is not a PEM certificate (or bundle of them) ${cause}`,
  ])
  t.notMatch(refused.join(''), /BEGIN|MII/, 'the message never carries the material')
  t.same(
    problems(
      configWith(pki.dir, '  tls:\n    cert: { pem: "${C}" }\n    key: { file: gatehouse-client.key }'),
      {
        ...env,
        C: 'not a certificate',
      },
    ),
    ['8 oidc.tls.cert.pem: is not a PEM certificate'],
    'other text that is not PEM gets no such hint',
  )
})

t.test('validity is judged at the time given: a certificate that has expired since', async (t) => {
  const pki = makePki(t)
  const raw = { cert: { file: 'gatehouse-client.crt' }, key: { file: 'gatehouse-client.key' } }
  pki.issue('gatehouse-client')
  t.ok('material' in readTls(raw, ['oidc', 'tls'], pki.dir))
  const later = readTls(raw, ['oidc', 'tls'], pki.dir, Date.now() + 3 * 86_400_000)
  t.match(later, {
    problems: [{ path: ['oidc', 'tls', 'cert', 'file'], message: /the certificate expired on/ }],
  })
})

t.test('routes[].tls: the same checks, and only for an https upstream', async (t) => {
  const pki = makePki(t)
  pki.issue('gatehouse-client')
  const write = (name: string, routes: string) => {
    const file = join(pki.dir, name)
    writeFileSync(
      file,
      `server: { publicUrl: https://app.example.com }
oidc: { issuer: https://idp.example.com, clientId: my-bff, clientSecret: s }
session: { secret: "\${SESSION_SECRET}" }
routes:
${routes}`,
    )
    return file
  }
  t.same(
    problems(
      write(
        'http.yaml',
        '  - path: /api\n    upstream: http://orders:8080\n    tls: { ca: { file: ca.crt } }\n',
      ),
    ),
    ['7 routes[0].tls: applies only to an https upstream'],
  )
  const mesh = `  - path: /mesh
    upstream: https://orders.mesh:8443
    tls:
      cert: { file: gatehouse-client.crt }
      key: { file: ca.key }
      servername: orders.mesh.internal
`
  t.same(problems(write('mesh.yaml', mesh)), [
    '9 routes[0].tls.key.file: ca.key is not the private key of the certificate in gatehouse-client.crt',
  ])
  const config = loadConfig(write('good.yaml', mesh.replace('ca.key', 'gatehouse-client.key')), env)
  t.match(config.routes[0]?.tls, {
    servername: 'orders.mesh.internal',
    certificate: { subject: 'CN=gatehouse-client' },
  })
})

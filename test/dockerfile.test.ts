import { readFileSync } from 'node:fs'
import t from 'tap'

// What the Dockerfile says; test/deploy/image.test.ts builds and runs it.
const dockerfile = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8')
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const stages = dockerfile.split(/^FROM /m).slice(1)
const runtime = stages.at(-1)!

t.test('every stage is the BASE_IMAGE argument, node:24-slim unless a build says otherwise', async (t) => {
  t.match(dockerfile.slice(0, dockerfile.search(/^FROM /m)), /^ARG BASE_IMAGE=node:24-slim$/m)
  t.ok(stages.length >= 2, 'multi-stage')
  for (const stage of stages) t.match(stage, /^\$\{BASE_IMAGE\} AS /)
})

t.test('a CA for npm comes in as a build secret, for the install steps only', async (t) => {
  const installs = dockerfile.match(/^RUN [^\n]*(?:\\\n[^\n]*)*npm ci[^\n]*$/gm) ?? []
  t.equal(installs.length, 2, 'two npm ci steps')
  for (const step of installs) t.match(step, /^RUN --mount=type=secret,id=npm-ca,required=false /)
  t.notMatch(
    dockerfile,
    /^(ARG|ENV) [^\n]*(NODE_EXTRA_CA_CERTS|npm-ca)/m,
    'never an ARG or ENV, which layers keep',
  )
  t.notMatch(runtime, /npm-ca/, 'nor anything of it in the runtime stage')
})

t.test('the runtime installs production dependencies only', async (t) => {
  t.match(dockerfile, /npm ci --omit=dev/)
  t.notMatch(runtime, /^RUN npm ci(?!.*--omit=dev)/m, 'no full install in the runtime stage')
  t.notMatch(
    runtime,
    /COPY (--\S+ )*\. /,
    'the runtime stage does not copy the whole tree (tests, dev files)',
  )
})

t.test('the runtime runs as a non-root user and starts the built CLI', async (t) => {
  const user = /^USER (\S+)/m.exec(runtime)?.[1]
  t.ok(user && user !== 'root' && user !== '0', `USER ${user}`)
  const cmd = /^CMD (.+)$/m.exec(runtime)?.[1]
  const argv = JSON.parse(cmd!) as string[]
  t.same(argv.slice(0, 3), ['node', 'dist/cli/index.js', 'start'])
  t.match(argv.join(' '), '--config /etc/gatehouse/routes.yaml')
  t.match(readme, argv.join(' '), 'the README documents the same start command')
})

t.test('the runtime user is numeric and not root, so runAsNonRoot can verify it', async (t) => {
  const user = /^USER (\d+)(?::(\d+))?$/m.exec(runtime)
  t.ok(user, 'USER is numeric (uid, optionally :gid)')
  t.equal(user?.[1], '1000', "the node image's unprivileged user")
  t.not(user?.[2], '0', 'not the root group')
  t.match(
    runtime,
    /COPY --from=build --chown=root:root/,
    'the app files are not the runtime user’s to change',
  )
})

t.test('the HEALTHCHECK probes the port the config names, through the CLI', async (t) => {
  const healthcheck = runtime.slice(runtime.search(/^HEALTHCHECK /m))
  const check = /\bCMD (\[.*\])$/m.exec(healthcheck)?.[1]
  const argv = JSON.parse(check!) as string[]
  const start = JSON.parse(/^CMD (.+)$/m.exec(runtime)![1]!) as string[]
  t.same(argv.slice(0, 3), ['node', 'dist/cli/index.js', 'health'])
  const configOf = (a: string[]) => a[a.indexOf('--config') + 1]
  t.equal(configOf(argv), configOf(start), 'the same config file as the server')
  t.notMatch(check, /3000/, 'no hard-coded port')
})

t.test('.dockerignore keeps history, dependencies, env files and local artefacts out', async (t) => {
  const ignore = readFileSync(new URL('../.dockerignore', import.meta.url), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
  for (const entry of [
    '.git',
    'node_modules',
    'test-artifacts',
    '.env*',
    'coverage',
    '.tap',
    'bench/results',
  ])
    t.ok(ignore.includes(entry), entry)
})

import { readFileSync } from 'node:fs'
import t from 'tap'

// Docker cannot run here, so the image's invariants are checked in its source.
const dockerfile = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8')
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const stages = dockerfile.split(/^FROM /m).slice(1)
const runtime = stages.at(-1)!

t.test('every stage is node:24-slim, and the runtime installs production dependencies only', async (t) => {
  t.ok(stages.length >= 2, 'multi-stage')
  for (const stage of stages) t.match(stage, /^node:24-slim\b/)
  t.match(dockerfile, /npm ci --omit=dev/)
  t.notMatch(runtime, /^RUN npm ci(?!.*--omit=dev)/m, 'no full install in the runtime stage')
  t.notMatch(
    runtime,
    /COPY (--\S+ )*\. /,
    'the runtime stage does not copy the whole tree (tests, dev files)',
  )
})

t.test('the runtime runs as a non-root user, checks /healthz, and starts the built CLI', async (t) => {
  const user = /^USER (\S+)/m.exec(runtime)?.[1]
  t.ok(user && user !== 'root' && user !== '0', `USER ${user}`)
  t.match(runtime, /^HEALTHCHECK .*\/healthz/ms)
  const cmd = /^CMD (.+)$/m.exec(runtime)?.[1]
  const argv = JSON.parse(cmd!) as string[]
  t.same(argv.slice(0, 3), ['node', 'dist/cli/index.js', 'start'])
  t.match(argv.join(' '), '--config /etc/gatehouse/routes.yaml')
  t.match(readme, argv.join(' '), 'the README documents the same start command')
})

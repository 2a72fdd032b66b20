import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import t from 'tap'
import { login } from '../helpers/login.js'
import { receiveSpans } from '../helpers/otlp-receiver.js'
import { startStack } from '../helpers/stack.js'

/**
 * Every exported span carries its resource, and the SDK's default
 * detectors describe the process with its whole command line, its
 * executable's path, the user it runs as and the machine's id
 * (/etc/machine-id, which machine-id(5) asks to keep confidential): a
 * command line can carry a secret or a path no operator means to ship to
 * a tracing vendor.
 */
const receiver = await receiveSpans(t)

/** What the process was started with, as a wrapper script might pass it. */
const SECRET_ARGUMENT = '--client-secret=s3cr3t-on-the-command-line'

/** What the resource never holds, by default. */
const LEFT_OUT = [
  'process.command_args',
  'process.command_line',
  'process.command',
  'process.executable.path',
  'process.executable.name',
  'process.owner',
  'host.id',
]

t.test(
  "the spans' resource names the service, host and runtime, not the command line, even one with a secret",
  async (t) => {
    // The detectors read the process's arguments when the SDK starts, with the first gateway.
    process.argv.push(SECRET_ARGUMENT)
    process.env.OTEL_RESOURCE_ATTRIBUTES = 'deployment.environment.name=prod'
    t.teardown(() => {
      process.argv.splice(process.argv.indexOf(SECRET_ARGUMENT), 1)
      delete process.env.OTEL_RESOURCE_ATTRIBUTES
    })
    const stack = await startStack(t, { config: { tracing: { enabled: true } } })
    await login(stack.gateway.url)
    await stack.close() // flushes the exporter

    t.ok(receiver.spans.length > 0, 'spans were exported')
    const resources = new Set(receiver.spans.map((s) => JSON.stringify(s.resource)))
    t.equal(resources.size, 1, 'one resource, the process')
    const resource = receiver.spans[0]!.resource
    t.same(
      LEFT_OUT.filter((key) => key in resource),
      [],
      `none of ${LEFT_OUT.join(', ')} (the resource has ${Object.keys(resource).join(', ')})`,
    )
    t.notOk(
      receiver.bodies.some((body) => body.includes('s3cr3t')),
      'the argument is in no export',
    )
    t.match(
      resource,
      {
        'service.name': 'gatehouse',
        'service.version': (
          JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
            version: string
          }
        ).version,
        'host.name': hostname(),
        'process.pid': process.pid,
        'process.runtime.name': 'nodejs',
        'process.runtime.version': process.versions.node,
        'telemetry.sdk.language': 'nodejs',
        'deployment.environment.name': 'prod',
      },
      "service and Gatehouse's version, host, process id, runtime and SDK, and what OTEL_RESOURCE_ATTRIBUTES adds",
    )
    t.type(resource['service.instance.id'], 'string', 'an id of this process for the backend')
  },
)

t.test(
  'OTEL_NODE_RESOURCE_DETECTORS, when set, chooses the detectors as the SDK reads it: the operator opts in',
  async (t) => {
    receiver.clear()
    process.env.OTEL_NODE_RESOURCE_DETECTORS = 'host'
    t.teardown(() => {
      delete process.env.OTEL_NODE_RESOURCE_DETECTORS
    })
    const stack = await startStack(t, { config: { tracing: { enabled: true } } })
    await fetch(`${stack.gateway.url}/healthz`)
    await login(stack.gateway.url)
    await stack.close()

    t.ok(receiver.spans.length > 0, 'spans were exported')
    const resource = receiver.spans[0]!.resource
    t.equal(resource['host.name'], hostname(), "the SDK's host detector")
    t.ok('host.id' in resource || 'host.arch' in resource, 'as the SDK has it')
    t.notOk('process.pid' in resource, 'and only the detectors named')
    t.equal(resource['service.name'], 'gatehouse', 'the service still named')
  },
)

/**
 * The SDK reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES in its `env`
 * detector only, and its base resource names the service
 * `unknown_service:` and the executable (process.argv0, often its whole
 * path): an operator who chose the detectors without `env` had the
 * service named OTEL_SERVICE_NAME in the docs, and so in their dashboards,
 * arrive as `unknown_service:/usr/local/bin/node`.
 */
t.test(
  'OTEL_SERVICE_NAME names the service whichever detectors OTEL_NODE_RESOURCE_DETECTORS names, and no resource names the executable',
  async (t) => {
    const cases = [
      {
        env: { OTEL_NODE_RESOURCE_DETECTORS: 'host', OTEL_SERVICE_NAME: 'payments-gw' },
        name: 'payments-gw',
      },
      // Without `env`, the SDK reads no OTEL_RESOURCE_ATTRIBUTES: Gatehouse's default stands.
      {
        env: { OTEL_NODE_RESOURCE_DETECTORS: 'host,os', OTEL_RESOURCE_ATTRIBUTES: 'service.name=ignored' },
        name: 'gatehouse',
      },
      {
        env: { OTEL_NODE_RESOURCE_DETECTORS: 'none', OTEL_SERVICE_NAME: 'payments-gw' },
        name: 'payments-gw',
      },
    ]
    for (const { env, name } of cases) {
      receiver.clear()
      Object.assign(process.env, env)
      try {
        const stack = await startStack(t, { config: { tracing: { enabled: true } } })
        await login(stack.gateway.url)
        await stack.close()
      } finally {
        for (const key of Object.keys(env)) delete process.env[key]
      }
      t.ok(receiver.spans.length > 0, `spans were exported (${JSON.stringify(env)})`)
      const resource = receiver.spans[0]!.resource
      t.equal(resource['service.name'], name, `the service is ${name} (${JSON.stringify(env)})`)
      t.notOk(
        Object.values(resource).some((value) => String(value).includes(process.execPath)),
        `no attribute names the executable, ${process.execPath}`,
      )
    }
  },
)

/**
 * The Kubernetes manifests in deploy/kubernetes, as `kubectl kustomize`
 * renders each overlay, alone and with every optional component: valid
 * against the Kubernetes schema, and saying what the image test proves and
 * what the gateway's config needs.
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import type { GatehouseConfig } from '../../src/config/types.js'
import {
  envFile,
  type K8sObject,
  kustomize,
  schemaProblems,
  unknownFieldProblems,
} from '../helpers/kubernetes.js'
import { onPath, run } from '../helpers/run.js'

const source = fileURLToPath(new URL('../../deploy/kubernetes/', import.meta.url))
const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8')
const [, imageUid, imageGid] = /^USER (\d+):(\d+)$/m.exec(dockerfile) ?? []

const skip =
  onPath('kubectl') || process.env.CI
    ? false
    : 'kubectl is not installed (CI uses the machine’s; with CI set this test never skips)'

interface Rendering {
  /** The overlay, and the components added to it. */
  readonly name: string
  readonly objects: readonly K8sObject[]
  readonly withComponents: boolean
}

const overlays = readdirSync(join(source, 'overlays'))
const components = readdirSync(join(source, 'components'))

/**
 * Renders every overlay from a copy of the tree, each with a secrets.env
 * made from its example (the one file a user adds), alone and with every
 * optional component.
 */
async function renderAll(): Promise<Rendering[]> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-kubernetes-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  cpSync(source, dir, { recursive: true })
  const renderings: Rendering[] = []
  for (const overlay of overlays) {
    const example = envFile(join(dir, 'overlays', overlay, 'secrets.env.example'))
    writeFileSync(
      join(dir, 'overlays', overlay, 'secrets.env'),
      Object.keys(example)
        .map((key) => `${key}=test-${key}-${'x'.repeat(32)}\n`)
        .join(''),
    )
    renderings.push({
      name: overlay,
      objects: await kustomize(join(dir, 'overlays', overlay)),
      withComponents: false,
    })
    const all = join(dir, 'with-components', overlay)
    mkdirSync(all, { recursive: true })
    writeFileSync(
      join(all, 'kustomization.yaml'),
      `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../../overlays/${overlay}]
components: [${components.map((c) => `../../components/${c}`).join(', ')}]
`,
    )
    renderings.push({
      name: `${overlay} + ${components.join(' + ')}`,
      objects: await kustomize(all),
      withComponents: true,
    })
  }
  return renderings
}

const find = (objects: readonly K8sObject[], kind: string, name?: string) =>
  objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name))
const findAll = (objects: readonly K8sObject[], kind: string) => objects.filter((o) => o.kind === kind)
const selects = (selector: Record<string, string> | undefined, labels: Record<string, string>) =>
  selector !== undefined &&
  Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels[k] === v)
const podSpec = (workload: K8sObject) => workload.spec.template.spec
const workloads = (objects: readonly K8sObject[]) =>
  objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')

/** The gateway container's environment as the kubelet resolves it: secret keys and `$(VAR)` expanded. */
function containerEnv(objects: readonly K8sObject[], container: K8sObject): Record<string, string> {
  const env: Record<string, string> = {}
  for (const { name, value, valueFrom } of container.env ?? []) {
    if (valueFrom?.secretKeyRef) {
      const { name: secret, key } = valueFrom.secretKeyRef
      const data = find(objects, 'Secret', secret)?.data?.[key]
      env[name] = Buffer.from(data ?? '', 'base64').toString('utf8')
    } else {
      // Kubernetes expands $(VAR) from variables defined earlier in the list.
      env[name] = String(value).replace(
        /\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g,
        (whole, v: string) => env[v] ?? whole,
      )
    }
  }
  return env
}

function configMap(objects: readonly K8sObject[]): K8sObject {
  const pod = podSpec(find(objects, 'Deployment', 'gatehouse')!)
  return find(objects, 'ConfigMap', pod.volumes[0].configMap.name)!
}

function gateway(objects: readonly K8sObject[]) {
  const deployment = find(objects, 'Deployment', 'gatehouse')!
  const pod = podSpec(deployment)
  const container = pod.containers.find((c: K8sObject) => c.name === 'gatehouse')
  const config: GatehouseConfig = parseConfig(
    configMap(objects).data['routes.yaml'],
    'routes.yaml',
    containerEnv(objects, container),
  )
  return { deployment, pod, container, config }
}

t.test('the manifests', { skip }, async (t) => {
  t.ok(onPath('kubectl'), 'kubectl is on PATH')
  const renderings = await renderAll()
  t.ok(overlays.includes('redis') && overlays.includes('sentinel'), `overlays: ${overlays.join(', ')}`)

  await t.test('the start scripts the Sentinel overlay mounts are valid sh', async (t) => {
    const dir = join(source, 'overlays/sentinel')
    for (const script of readdirSync(dir).filter((f) => f.endsWith('.sh'))) {
      const ran = await run('sh', ['-n', join(dir, script)], 10_000)
      t.equal(ran.code, 0, `${script} ${ran.stderr}`)
    }
  })

  await t.test('every object is valid against the Kubernetes schema, with no unknown field', async (t) => {
    for (const { name, objects } of renderings) {
      t.same(await schemaProblems(objects), [], `${name}: ${objects.length} objects valid`)
    }
    t.same(unknownFieldProblems(renderings.flatMap((r) => r.objects)), [], 'no field the schema lacks')
  })

  for (const { name, objects, withComponents } of renderings) {
    await t.test(name, async (t) => {
      const { deployment, pod, container, config } = gateway(objects)
      const podLabels = deployment.spec.template.metadata.labels

      t.test('the pod runs as the image test runs the container', async (t) => {
        t.equal(pod.securityContext.runAsNonRoot, true)
        t.equal(String(pod.securityContext.runAsUser), imageUid, 'the Dockerfile’s USER')
        t.equal(String(pod.securityContext.runAsGroup), imageGid)
        t.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault')
        t.equal(pod.automountServiceAccountToken, false)
        const security = container.securityContext
        t.equal(security.readOnlyRootFilesystem, true)
        t.equal(security.allowPrivilegeEscalation, false)
        t.equal(security.runAsNonRoot, true)
        t.equal(String(security.runAsUser), imageUid)
        t.same(security.capabilities.drop, ['ALL'])
        t.notOk(security.capabilities.add, 'no capability added back')
        // The image test runs with no tmpfs at all: no volume here is writable.
        for (const mount of container.volumeMounts)
          t.equal(mount.readOnly, true, `${mount.mountPath} read-only`)
        for (const volume of pod.volumes)
          t.ok(volume.configMap ?? volume.secret, `${volume.name} is config, not storage`)
        t.equal(container.volumeMounts[0].mountPath, '/etc/gatehouse', 'where the image reads its config')
      })

      t.test('the config is accepted, with its secrets and the overlay’s store', async (t) => {
        const port = (name: string) => container.ports.find((p: K8sObject) => p.name === name)?.containerPort
        t.equal(port('http'), config.server.port, 'the http containerPort is server.port')
        t.equal(port('metrics'), config.metrics.port, 'the metrics containerPort is metrics.port')
        t.equal(config.metrics.host, '0.0.0.0', 'metrics bound where the scraper reaches the pod IP')
        const annotations = deployment.spec.template.metadata.annotations
        t.equal(annotations['prometheus.io/port'], String(config.metrics.port))
        t.equal(annotations['prometheus.io/path'], '/metrics')
        t.equal(config.server.trustProxy, true, 'behind the ingress controller')
        t.match(config.oidc.clientSecret, /^test-oidc-client-secret-x+$/, 'the client secret from the Secret')
        // Rotation without signing everyone out: a second secret opens what the
        // first did not seal, and is optional between rotations.
        t.match(
          config.session.secrets,
          [/^test-session-secret-x+$/, /^test-session-secret-second-x+$/],
          'the session secret seals; the second, while set, opens too',
        )
        const second = container.env.find((e: K8sObject) => e.name === 'SESSION_SECRET_SECOND')
        t.equal(
          second?.valueFrom?.secretKeyRef?.optional,
          true,
          'a Secret without the second key still starts',
        )
        const unset = parseConfig(configMap(objects).data['routes.yaml'], 'routes.yaml', {
          ...containerEnv(objects, container),
          SESSION_SECRET_SECOND: '',
        })
        t.equal(unset.session.secrets.length, 1, 'left empty: the session secret alone')
        const store = config.session.store
        const services = findAll(objects, 'Service')
        const portOf = (host: string, port: number) =>
          services.find(
            (s) => s.metadata.name === host && s.spec.ports.some((p: K8sObject) => p.port === port),
          )
        if (name.startsWith('redis')) {
          t.equal(store.kind, 'redis')
          const url = new URL(store.kind === 'redis' ? store.url : '')
          t.ok(portOf(url.hostname, Number(url.port)), `${url.hostname}:${url.port} is a Service`)
          t.match(url.password, /^test-redis-password-x+$/, 'the password from the Secret')
          const redis = find(objects, 'StatefulSet', 'redis')!
          t.match(podSpec(redis).containers[0].args.join(' '), '--appendonly yes', 'Redis persists')
        } else {
          t.equal(store.kind, 'sentinel')
          if (store.kind !== 'sentinel') return
          t.equal(store.sentinels.length, 3)
          for (const { host, port } of store.sentinels) {
            const [pod, service] = host.split('.') as [string, string]
            const set = findAll(objects, 'StatefulSet').find((s) =>
              new RegExp(`^${s.metadata.name}-\\d+$`).test(pod),
            )
            t.equal(set?.spec.serviceName, service, `${host}: a pod of ${set?.metadata.name}`)
            t.ok(Number(pod.slice(set!.metadata.name.length + 1)) < set!.spec.replicas, `${pod} exists`)
            t.ok(portOf(service, port), `${service}:${port} is a Service`)
          }
          const scripts = findAll(objects, 'ConfigMap').find((c) => c.data?.['sentinel-start.sh'])
          t.match(scripts?.data['sentinel-start.sh'], `sentinel monitor ${store.name} `, 'the name monitored')
          t.match(store.password, /^test-redis-password-x+$/, 'the password from the Secret')
        }
      })

      t.test('probes: /healthz for start-up and liveness, /readyz for readiness', async (t) => {
        t.same(container.startupProbe.httpGet, { path: '/healthz', port: 'http' })
        t.same(container.livenessProbe.httpGet, { path: '/healthz', port: 'http' })
        t.same(container.readinessProbe.httpGet, { path: '/readyz', port: 'http' })
      })

      t.test('SIGTERM comes after the preStop delay, and the grace period covers the drain', async (t) => {
        const delay = container.lifecycle.preStop.sleep.seconds as number
        t.ok(delay >= 3, `preStop sleeps ${delay} s while endpoints stop routing to the pod`)
        const grace = pod.terminationGracePeriodSeconds as number
        // The rendered config's own drain (server.drainTimeout), default or set.
        const drain = config.server.drainTimeout / 1000
        t.ok(grace > delay + drain, `grace ${grace} s > ${delay} s preStop + ${drain} s drain`)
        t.ok(grace <= delay + drain + 10, 'and not so long that a stuck pod lingers')
      })

      t.test(
        'a changed config is reloaded in place; a changed secret is a new name, so the pods roll',
        async (t) => {
          const configMaps = findAll(objects, 'ConfigMap').map((c) => c.metadata.name as string)
          const secrets = findAll(objects, 'Secret')
          t.equal(
            pod.volumes[0].configMap.name,
            'gatehouse-config',
            'the config keeps its name: it changes in place',
          )
          t.notOk(
            container.volumeMounts[0].subPath,
            'mounted as a directory: a subPath mount never sees the ..data swap',
          )
          for (const workload of workloads(objects)) {
            const spec = podSpec(workload)
            for (const volume of spec.volumes ?? []) {
              if (volume.configMap)
                t.ok(configMaps.includes(volume.configMap.name), `${volume.configMap.name} rendered`)
            }
            for (const c of spec.containers) {
              for (const { valueFrom } of c.env ?? []) {
                const ref = valueFrom?.secretKeyRef
                if (!ref) continue
                const secret = secrets.find((s) => s.metadata.name === ref.name)
                t.match(
                  ref.name,
                  /^gatehouse-[a-z0-9]{10}$/,
                  `${workload.metadata.name} names the hashed Secret`,
                )
                t.ok(secret?.data?.[ref.key], `${ref.name} has ${ref.key}`)
              }
            }
          }
        },
      )

      t.test('the Service, Ingress and disruption budget reach the gateway’s pods', async (t) => {
        const service = find(objects, 'Service', 'gatehouse')!
        t.ok(selects(service.spec.selector, podLabels), 'the Service selects the pods')
        t.same(
          service.spec.ports.map((p: K8sObject) => p.targetPort),
          ['http'],
          'the Service (and so the Ingress) carries the public port only',
        )
        const ingress = find(objects, 'Ingress', 'gatehouse')!
        const host = new URL(config.server.publicUrl).hostname
        t.equal(ingress.spec.rules[0].host, host, 'the Ingress serves server.publicUrl’s host')
        t.same(ingress.spec.tls[0].hosts, [host], 'over TLS')
        t.same(ingress.spec.rules[0].http.paths[0].backend.service, {
          name: 'gatehouse',
          port: { name: 'http' },
        })
        const budget = find(objects, 'PodDisruptionBudget', 'gatehouse')!
        t.ok(selects(budget.spec.selector.matchLabels, podLabels), 'the budget covers the pods')
        t.equal(budget.spec.maxUnavailable, 1)
        for (const set of findAll(objects, 'StatefulSet')) {
          const governing = find(objects, 'Service', set.spec.serviceName)
          t.equal(governing?.spec.clusterIP, 'None', `${set.metadata.name} has its headless Service`)
          t.ok(selects(governing?.spec.selector, set.spec.template.metadata.labels), 'which selects its pods')
        }
      })

      if (!withComponents) {
        t.equal(deployment.spec.replicas, 3, 'three replicas')
        t.notOk(find(objects, 'HorizontalPodAutoscaler'), 'no autoscaler unless asked for')
        t.notOk(find(objects, 'ServiceMonitor'), 'no ServiceMonitor unless asked for: it needs the CRD')
        return
      }
      t.test('the autoscaler owns the replica count', async (t) => {
        const hpa = find(objects, 'HorizontalPodAutoscaler', 'gatehouse')!
        t.same(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'gatehouse' })
        t.ok(hpa.spec.minReplicas >= 2, 'at least two, so the budget can let one go')
        t.equal(deployment.spec.replicas, undefined, 'so an apply does not reset it')
      })
      t.test(
        'the ServiceMonitor scrapes the metrics port through a Service the Ingress never uses',
        async (t) => {
          const monitor = find(objects, 'ServiceMonitor', 'gatehouse')!
          const service = findAll(objects, 'Service').find((s) =>
            selects(monitor.spec.selector.matchLabels, s.metadata.labels),
          )
          t.equal(service?.metadata.name, 'gatehouse-metrics')
          t.not(service?.metadata.name, 'gatehouse', 'not the Ingress’s Service')
          t.ok(selects(service?.spec.selector, podLabels), 'which selects the pods')
          const endpoint = monitor.spec.endpoints[0]
          const port = service?.spec.ports.find((p: K8sObject) => p.name === endpoint.port)
          t.equal(port?.targetPort, 'metrics', 'the container’s metrics port')
          t.equal(endpoint.path, '/metrics')
        },
      )
    })
  }
})

t.test('docs/deployment.md points at the shipped manifests and embeds none of its own', async (t) => {
  const doc = readFileSync(new URL('../../docs/deployment.md', import.meta.url), 'utf8')
  for (const dir of [...overlays.map((o) => `overlays/${o}/`), ...components.map((c) => `components/${c}/`)])
    t.match(doc, `\`${dir}\``, `names ${dir}`)
  const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map(([, block]) => block!)
  t.notOk(
    blocks.some((block) => /^kind: (Deployment|Service|StatefulSet|Ingress)$/m.test(block)),
    'one source of truth: deploy/kubernetes',
  )
})

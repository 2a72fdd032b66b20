import { readFileSync } from 'node:fs'
import t from 'tap'

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8')
const pkg = JSON.parse(read('package.json')) as { engines: { node: string } }
const lock = JSON.parse(read('package-lock.json')) as {
  packages: Record<string, { dev?: boolean; engines?: { node?: string } }>
}
const imageMajor = Number(/^ARG BASE_IMAGE=node:(\d+)/m.exec(read('Dockerfile'))?.[1])

/** The lowest major each `||` alternative of an engines range admits. */
const floors = (range: string) => range.split('||').map((part) => Number(/\d+/.exec(part)?.[0] ?? 0))

t.test(
  'engines names the LTS lines 22 and the image’s, and no line a production dependency refuses',
  async (t) => {
    const ours = floors(pkg.engines.node)
    t.ok(ours.includes(22), `${pkg.engines.node} admits Node 22`)
    t.ok(ours.includes(imageMajor), `${pkg.engines.node} admits Node ${imageMajor}, the image's`)
    for (const [name, entry] of Object.entries(lock.packages)) {
      const range = entry.engines?.node
      if (name === '' || entry.dev || range === undefined) continue
      t.ok(Math.min(...ours) >= Math.min(...floors(range)), `${name} (node ${range})`)
    }
  },
)

// .ci/run installs the image's Node when the machine's is another line; this
// is what proves it took effect for the suite itself.
t.test('under CI the suite runs on the image’s Node', async (t) => {
  const running = Number(process.versions.node.split('.')[0])
  if (process.env.CI) t.equal(running, imageMajor, `node ${process.version}`)
  else t.ok(running >= 20, `node ${process.version}; CI checks the line`)
})

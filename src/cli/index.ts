#!/usr/bin/env node
// The version check is the one static import: on an unsupported Node the
// rest of the CLI (fastify, undici, oauth4webapi) may fail as it loads, so
// it is imported only once the check has passed.
import { nodeRefusal } from './supported-node.js'

const refusal = nodeRefusal()
if (refusal !== undefined) {
  process.stderr.write(`${refusal}\n`)
  process.exitCode = 1
} else {
  const [{ main }, { HeldHangups }] = await Promise.all([import('./main.js'), import('../server/hangups.js')])
  let hangups: InstanceType<typeof HeldHangups> | undefined
  process.exitCode = await main(process.argv.slice(2), {
    stdout: (line) => process.stdout.write(`${line}\n`),
    stderr: (line) => process.stderr.write(`${line}\n`),
    env: process.env,
    // Loading the config and the server takes a while; a SIGHUP meanwhile
    // is a reload to run once the gateway listens, not the end of it.
    starting: () => {
      hangups = new HeldHangups()
    },
    // Imported on demand: `check` must not load (or fail on) the server and its
    // clients, and a broken import becomes a one-line error instead of a stack.
    start: async (config, file, digest) =>
      (await import('../server/start.js')).start(config, {
        configFile: file,
        configDigest: digest,
        env: process.env,
        ...(hangups === undefined ? {} : { hangups }),
      }),
  })
  // After `start` the listening server keeps the process alive; exit code 0 does not end it.
}

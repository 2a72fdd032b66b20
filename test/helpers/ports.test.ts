import { createServer, type Server } from 'node:net'
import t from 'tap'
import { onFreePorts } from './ports.js'

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve(server))
  })
}

t.test('a port taken between the probe and the listen is replaced by a fresh one', async (t) => {
  const tried: number[] = []
  const server = await onFreePorts(1, async ([port]) => {
    tried.push(port!)
    if (tried.length === 1) {
      // Another process wins the race for the probed port.
      const thief = await listen(port!)
      t.teardown(() => new Promise<void>((resolve) => thief.close(() => resolve())))
    }
    return listen(port!)
  })
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  t.equal(tried.length, 2, 'started again after EADDRINUSE')
  t.not(tried[1], tried[0])
  t.equal((server.address() as { port: number }).port, tried[1])
})

t.test('any other failure is not retried', async (t) => {
  let calls = 0
  await t.rejects(
    onFreePorts(2, async (ports) => {
      calls++
      t.equal(ports.length, 2)
      throw new Error('the IdP did not start')
    }),
    { message: 'the IdP did not start' },
  )
  t.equal(calls, 1)
})

import { connect, createServer, type Server } from 'node:net'
import t from 'tap'
import { addressInUse, isAddressInUse, onFreePort, onFreePorts, REFUSED_PORT, REFUSED_URL } from './ports.js'

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

t.test('a child process that says its port was taken is retried too', async (t) => {
  const tried: number[] = []
  const port = await onFreePort(async (port) => {
    tried.push(port)
    if (tried.length === 1) throw addressInUse('redis-server exited with 1: Address already in use')
    return port
  })
  t.equal(tried.length, 2)
  t.equal(port, tried[1])
  t.ok(
    isAddressInUse(
      new Error('# Warning: Could not create server TCP listening socket: Address already in use'),
    ),
  )
  t.notOk(isAddressInUse(new Error('connect ECONNREFUSED 127.0.0.1:2')))
})

t.test('the ports are distinct and below `max`', async (t) => {
  const ports = await onFreePorts(4, async (ports) => ports, { max: 55_535 })
  t.equal(new Set(ports).size, 4)
  for (const port of ports) t.ok(port > 0 && port <= 55_535, `${port}`)
})

t.test('after the last attempt the EADDRINUSE is thrown', async (t) => {
  let calls = 0
  await t.rejects(
    onFreePort(
      async () => {
        calls++
        throw addressInUse('taken')
      },
      { attempts: 3 },
    ),
    { code: 'EADDRINUSE' },
  )
  t.equal(calls, 3)
})

t.test('REFUSED_PORT refuses connections, and fetch reaches it to be refused', async (t) => {
  const refused = await new Promise<NodeJS.ErrnoException>((resolve) => {
    const socket = connect(REFUSED_PORT, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(Object.assign(new Error('connected'), { code: 'CONNECTED' }))
    })
    socket.once('error', resolve)
  })
  t.equal(refused.code, 'ECONNREFUSED')
  const error = await fetch(REFUSED_URL).catch((err: Error) => err)
  t.match(
    (error as Error & { cause?: { code?: string } }).cause,
    { code: 'ECONNREFUSED' },
    'not a blocked port',
  )
})

import { Redis } from 'ioredis'

/**
 * Every key under `prefix`, found with SCAN and read by its type, as a
 * backup or a reader with read access would see it: key name to its whole
 * value as text (a hash's fields and values, a sorted set's members and
 * scores, and so on).
 */
export async function dumpKeys(url: string, prefix: string): Promise<Map<string, string>> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await redis.connect()
  try {
    const keys: string[] = []
    let cursor = '0'
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
      keys.push(...batch)
      cursor = next
    } while (cursor !== '0')
    const dump = new Map<string, string>()
    for (const key of new Set(keys)) {
      const value = await read(redis, key)
      if (value !== undefined) dump.set(key, value)
    }
    return dump
  } finally {
    redis.disconnect()
  }
}

async function read(redis: Redis, key: string): Promise<string | undefined> {
  const type = await redis.type(key)
  switch (type) {
    case 'none':
      return undefined
    case 'string':
      return (await redis.get(key)) ?? undefined
    case 'hash':
      return JSON.stringify(await redis.hgetall(key))
    case 'zset':
      return JSON.stringify(await redis.call('ZRANGE', key, '0', '-1', 'WITHSCORES'))
    case 'set':
      return JSON.stringify(await redis.smembers(key))
    case 'list':
      return JSON.stringify(await redis.lrange(key, 0, -1))
    case 'stream':
      return JSON.stringify(await redis.xrange(key, '-', '+'))
    default:
      throw new Error(`${key}: a Redis type the dump cannot read (${type})`)
  }
}

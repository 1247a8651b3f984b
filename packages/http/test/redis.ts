/**
 * Redis for the tests that need a real one (`ZAPIER_TEST_REDIS_URL`, default the local server): one probe per test
 * file. Without `CI` an unreachable Redis skips those tests with the reason printed; with `CI` they run and fail.
 */
import { Redis } from "ioredis"

export const redisUrl = process.env.ZAPIER_TEST_REDIS_URL ?? "redis://127.0.0.1:6379"

/** The URL as it may be printed: its password masked. */
const shownRedisUrl = (() => {
  try {
    const parsed = new URL(redisUrl)
    if (parsed.password) parsed.password = "***"
    return parsed.toString()
  } catch {
    return "(unparsable ZAPIER_TEST_REDIS_URL)"
  }
})()

export interface RedisAvailability {
  /** Why Redis cannot be used, or `undefined` when it answered a PING. */
  readonly unavailable: string | undefined
  /** Skip the tests: Redis is unavailable and this is not CI (the reason has been printed). */
  readonly skip: boolean
}

/** Probes Redis once (2 s connect timeout, no retries); `what` names the tests in the printed reason. */
export const redisAvailability = async (what: string): Promise<RedisAvailability> => {
  const client = new Redis(redisUrl, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 2_000
  })
  client.on("error", () => {})
  let unavailable: string | undefined
  try {
    await client.connect()
    await client.ping()
  } catch (error) {
    unavailable = `Redis at ${shownRedisUrl} is not reachable (${error instanceof Error ? error.message : String(error)})`
  } finally {
    client.disconnect()
  }
  const skip = unavailable !== undefined && !process.env.CI
  if (skip) console.warn(`Skipping ${what}: ${unavailable}. Set ZAPIER_TEST_REDIS_URL to run them.`)
  return { unavailable, skip }
}

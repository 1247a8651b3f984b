/**
 * The Redis run-event bus against a real Redis: two buses with their own connections (two replicas) share one
 * prefix; an await on one completes from a publish on the other, a duplicate is ignored, only the token's digest
 * is stored, and an unreachable Redis fails with RunEventsUnavailable instead of hanging.
 */
import { assert, describe, it } from "@effect/vitest"
import { Domain, RunEvents } from "@effect-zapier/core"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { Redis } from "ioredis"
import { RunEventsRedis } from "../src/index.js"
import { waitUntil } from "./kit.js"
import { redisAvailability, redisUrl } from "./redis.js"

const { skip: skipRedis } = await redisAvailability("the Redis run-event bus tests")

const uniquePrefix = () => `effect-zapier-test:runs:${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}:`

const event = (runId: Domain.ActionRunId, token: Redacted.Redacted<string>, results: ReadonlyArray<unknown>) =>
  Effect.map(DateTime.now, (receivedAt) =>
    RunEvents.RunEvent.make({
      runId,
      state: Domain.RunSucceeded.make({ runId, results }),
      routingToken: token,
      source: "callback",
      receivedAt
    })
  )

describe.skipIf(skipRedis)("RunEventsRedis (real Redis)", () => {
  it.scopedLive("an await on one replica completes from a publish on another; duplicates are ignored", () =>
    Effect.gen(function* () {
      const prefix = uniquePrefix()
      const a = yield* RunEventsRedis.make({ redis: { url: redisUrl }, prefix })
      const b = yield* RunEventsRedis.make({ redis: { url: Redacted.make(redisUrl) }, prefix })
      const runId = Domain.ActionRunId.make(`run-${Math.random().toString(36).slice(2)}`)
      const token = yield* RunEvents.mintToken
      yield* a.expect(runId, token)
      assert.strictEqual(yield* b.check(runId, token), "match")
      assert.strictEqual(yield* b.check(runId, yield* RunEvents.mintToken), "mismatch")
      assert.strictEqual(yield* b.check(Domain.ActionRunId.make("run-none"), token), "unknown")

      const waiting = yield* Effect.fork(a.await(runId))
      // Gives the await a moment to subscribe, so the publish usually wakes it. No assertion depends on it: an
      // await that starts after the publish completes at once from the kept event (checked below as well).
      yield* Effect.sleep("50 millis")
      assert.isTrue(yield* b.publish(yield* event(runId, token, [{ n: 1 }])))
      assert.isFalse(yield* b.publish(yield* event(runId, token, [{ n: 2 }])), "a duplicate")
      // The timeout only catches a hang.
      const received = yield* Fiber.join(waiting).pipe(Effect.timeout("30 seconds"))
      assert.deepStrictEqual(received.state._tag === "RunSucceeded" ? received.state.results : [], [{ n: 1 }])
      assert.isTrue(RunEvents.sameToken(received.routingToken!, token))
      // A later await, on either replica, completes at once from the kept event.
      assert.strictEqual((yield* b.await(runId)).runId, runId)
      assert.isTrue(Option.isSome(yield* a.lookup(runId)))

      // Only the digest of the token is stored for the expectation.
      const inspector = yield* Effect.acquireRelease(
        Effect.sync(() => new Redis(redisUrl)),
        (client) => Effect.promise(() => client.quit())
      )
      const stored = yield* Effect.promise(() => inspector.get(`${prefix}expect:${runId}`))
      assert.match(stored ?? "", /^[0-9a-f]{64}$/)
      assert.notInclude(stored ?? "", Redacted.value(token))
      const ttl = yield* Effect.promise(() => inspector.ttl(`${prefix}event:${runId}`))
      assert.isAbove(ttl, 0)
    })
  )

  it.scopedLive("an end published while the subscription was down is found when it comes back", () =>
    Effect.gen(function* () {
      const prefix = uniquePrefix()
      const name = `callbacks-test-${Math.random().toString(36).slice(2)}`
      const bus = yield* RunEventsRedis.make({ redis: { url: redisUrl, options: { connectionName: name } }, prefix })
      const other = yield* RunEventsRedis.make({ redis: { url: redisUrl }, prefix })
      const runId = Domain.ActionRunId.make(`run-${Math.random().toString(36).slice(2)}`)
      const token = yield* RunEvents.mintToken
      const waiting = yield* Effect.fork(bus.await(runId))
      const inspector = yield* Effect.acquireRelease(
        Effect.sync(() => new Redis(redisUrl)),
        (client) => Effect.promise(() => client.quit())
      )
      const subscribers = Effect.promise(() => inspector.client("LIST") as Promise<string>).pipe(
        Effect.map((list) =>
          list
            .split("\n")
            .filter((line) => line.includes(`name=${name}`) && /cmd=(p?subscribe|ping)/.test(line))
            .map((line) => /id=(\d+)/.exec(line)?.[1])
            .filter((id): id is string => id !== undefined)
        )
      )
      // Waits until Redis shows the bus's subscriber connection (instead of 100 ms, which a busy machine can spend
      // before it subscribes); the guard only catches a hang.
      yield* waitUntil(subscribers, (ids) => ids.length > 0, "the bus's subscriber connection")
      // The end is written without its wake-up message (as if the message was lost), then the subscriber's
      // connection is killed: when it reconnects, the waiter reads the key again.
      const encoded = yield* Schema.encode(Schema.parseJson(RunEvents.RunEvent))(yield* event(runId, token, [{ n: 3 }]))
      yield* Effect.promise(() => inspector.set(`${prefix}event:${runId}`, encoded, "EX", 60))
      const ids = yield* subscribers
      assert.isAbove(ids.length, 0, "the subscriber connection was found")
      for (const id of ids) yield* Effect.promise(() => inspector.client("KILL", "ID", id))
      const received = yield* Fiber.join(waiting).pipe(Effect.timeout("30 seconds"))
      assert.strictEqual(received.runId, runId)
      assert.isFalse(yield* other.publish(yield* event(runId, token, [{ n: 4 }])), "the kept end wins")
    })
  )

  it.scopedLive("an unreachable Redis fails with RunEventsUnavailable within the timeout", () =>
    Effect.gen(function* () {
      const bus = yield* RunEventsRedis.make({
        redis: { url: "redis://127.0.0.1:1", options: { retryStrategy: () => null } },
        prefix: uniquePrefix(),
        timeout: "300 millis"
      })
      const runId = Domain.ActionRunId.make("run-x")
      const error = yield* Effect.flip(bus.check(runId, yield* RunEvents.mintToken))
      assert.strictEqual(error._tag, "RunEventsUnavailable")
      // The outer timeout only catches a hang (the bus's own 300 ms timeout is what fails it).
      const awaited = yield* Effect.flip(bus.await(runId).pipe(Effect.timeout("30 seconds")))
      assert.strictEqual(awaited._tag, "RunEventsUnavailable")
      assert.notInclude(error.message, "redis://")
    })
  )
})

import { assert, describe, it } from "@effect/vitest"
import { ConnectionStore, EmbeddedActions, Metrics, Polling } from "@effect-zapier/core"
import { FakeZapier } from "@effect-zapier/testing"
import { Duration, Effect, Fiber, Layer, Metric, TestClock } from "effect"

const { sample } = FakeZapier
const user = sample.user

/** A fresh model, store and program per test; polling without jitter, so the timings are exact. */
const TestLayer = EmbeddedActions.layer.pipe(
  Layer.provideMerge(Layer.merge(FakeZapier.layer(FakeZapier.sampleSeed), ConnectionStore.layerMemory))
)
const noJitter = Effect.provideService(Polling.Policy, { ...Polling.defaults, jitter: 0 })

const connect = Effect.gen(function* () {
  const actions = yield* EmbeddedActions.EmbeddedActions
  const zapier = yield* FakeZapier.FakeZapier
  const required = yield* Effect.flip(actions.ensureConnection(user, sample.slack))
  if (required._tag !== "ConnectionRequired") return assert.fail(`expected ConnectionRequired, got ${required._tag}`)
  return yield* actions.completeConnection(user, sample.slack, yield* zapier.approveConnect(required.link!))
})

const settle = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    yield* TestClock.adjust("10 minutes")
    return yield* Fiber.join(fiber)
  })

/** Every metric this suite looks at, read at once (metrics are process-wide: tests compare before and after). */
const snapshot = Effect.all({
  started: Effect.map(Metric.value(Metrics.runsStarted), (s) => s.count),
  succeeded: Effect.map(Metric.value(Metrics.runsSucceeded), (s) => s.count),
  failedRun: Effect.map(Metric.value(Metrics.runsFailedWith("ActionRunFailed", "await")), (s) => s.count),
  failedTimeout: Effect.map(Metric.value(Metrics.runsFailedWith("PollTimeout", "await")), (s) => s.count),
  failedConnect: Effect.map(Metric.value(Metrics.runsFailedWith("ConnectionRequired", "start")), (s) => s.count),
  polls: Metric.value(Metrics.pollsPerRun),
  duration: Metric.value(Metrics.runDuration),
  lag: Metric.value(Metrics.detectionLag)
})

describe("Metrics recorded by EmbeddedActions", () => {
  it.effect("a successful run: started, succeeded, its polls, duration and detection lag", () =>
    Effect.gen(function* () {
      const actions = yield* EmbeddedActions.EmbeddedActions
      const zapier = yield* FakeZapier.FakeZapier
      yield* connect
      const before = yield* snapshot
      const result = yield* settle(
        actions.run({
          user,
          app: sample.slack,
          action: sample.sendChannelMessage,
          inputs: { channel: "#general", text: "Hi" }
        })
      )
      const after = yield* snapshot
      const polls = FakeZapier.pollsOf(yield* zapier.ledger, result.runId).length
      assert.strictEqual(after.started - before.started, 1)
      assert.strictEqual(after.succeeded - before.succeeded, 1)
      // A 2 s run without jitter: polls at 500 ms, 1250 ms (pending) and 2375 ms (done).
      assert.strictEqual(polls, 3)
      assert.strictEqual(after.polls.count - before.polls.count, 1)
      assert.strictEqual(after.polls.sum - before.polls.sum, 3)
      assert.strictEqual(after.duration.count - before.duration.count, 1)
      assert.strictEqual(after.duration.sum - before.duration.sum, 2375)
      assert.strictEqual(after.lag.count - before.lag.count, 1)
      assert.strictEqual(after.lag.sum - before.lag.sum, 2375 - 1250)
    }).pipe(noJitter, Effect.provide(TestLayer))
  )

  it.effect("a run that ends in error: failed by tag at the await stage, with its duration", () =>
    Effect.gen(function* () {
      const actions = yield* EmbeddedActions.EmbeddedActions
      yield* connect
      const before = yield* snapshot
      const error = yield* settle(
        Effect.flip(actions.run({ user, app: sample.slack, action: sample.sendDirectMessage, inputs: { text: "Hi" } }))
      )
      const after = yield* snapshot
      assert.strictEqual(error._tag, "ActionRunFailed")
      assert.strictEqual(after.started - before.started, 1)
      assert.strictEqual(after.succeeded - before.succeeded, 0)
      assert.strictEqual(after.failedRun - before.failedRun, 1)
      assert.strictEqual(after.duration.count - before.duration.count, 1)
      // Fails after 1 s: polls at 500 ms (pending) and 1250 ms (error).
      assert.strictEqual(after.duration.sum - before.duration.sum, 1250)
      assert.strictEqual(after.polls.sum - before.polls.sum, 2)
    }).pipe(noJitter, Effect.provide(TestLayer))
  )

  it.effect("a run still pending at the deadline: PollTimeout, polls counted, no duration", () =>
    Effect.gen(function* () {
      const actions = yield* EmbeddedActions.EmbeddedActions
      yield* connect
      const before = yield* snapshot
      const error = yield* settle(
        Effect.flip(
          actions.run({
            user,
            app: sample.slack,
            action: sample.exportChannelHistory,
            inputs: { channel: "#general" },
            timeout: Duration.seconds(10)
          })
        )
      )
      const after = yield* snapshot
      assert.strictEqual(error._tag, "PollTimeout")
      assert.strictEqual(after.failedTimeout - before.failedTimeout, 1)
      assert.strictEqual(after.polls.count - before.polls.count, 1)
      assert.isAbove(after.polls.sum - before.polls.sum, 3)
      assert.strictEqual(after.duration.count - before.duration.count, 0)
      assert.strictEqual(after.lag.count - before.lag.count, 0)
    }).pipe(noJitter, Effect.provide(TestLayer))
  )

  it.effect("a start without a connection: failed by tag at the start stage, nothing started", () =>
    Effect.gen(function* () {
      const actions = yield* EmbeddedActions.EmbeddedActions
      const before = yield* snapshot
      const error = yield* Effect.flip(
        actions.start({ user, app: sample.slack, action: sample.sendChannelMessage, inputs: {} })
      )
      const after = yield* snapshot
      assert.strictEqual(error._tag, "ConnectionRequired")
      assert.strictEqual(after.failedConnect - before.failedConnect, 1)
      assert.strictEqual(after.started - before.started, 0)
    }).pipe(Effect.provide(TestLayer))
  )
})

describe("trackExchange", () => {
  const count = (metric: Metric.Metric.Counter<number>) => Effect.map(Metric.value(metric), (s) => s.count)

  it.effect("counts into tokenExchangesFor's series, with the fiber's metric labels after its own", () =>
    Effect.gen(function* () {
      const ok = Metrics.tokenExchangesFor("connect", "success")
      const failed = Metrics.tokenExchangesFor("connect", "failure")
      const labelled = ok.pipe(Metric.tagged("tenant", "t-track"))
      const before = { ok: yield* count(ok), failed: yield* count(failed), labelled: yield* count(labelled) }
      const track = Metrics.trackExchange("connect")
      yield* track(Effect.succeed(1))
      yield* Effect.flip(track(Effect.fail("refused")))
      yield* track(Effect.succeed(2)).pipe(Effect.tagMetrics("tenant", "t-track"))
      assert.strictEqual((yield* count(ok)) - before.ok, 1)
      assert.strictEqual((yield* count(failed)) - before.failed, 1)
      assert.strictEqual((yield* count(labelled)) - before.labelled, 1)
    })
  )
})

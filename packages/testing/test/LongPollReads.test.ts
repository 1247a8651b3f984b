/**
 * `FakeZapier.layer` with `runReads: "long-poll"`: core's `ActionRuns.get` is the Actions API's held read, on the
 * model's clock (the TestClock): held until the run ends or the wait passes (then pending, `held`, with the 202's
 * `Retry-After`), every read in the ledger, and metered in a rate-limit bucket of its own.
 */
import { assert, describe, it } from "@effect/vitest"
import { ActionCatalog, ActionRuns, ConnectionStore, Domain, EmbeddedActions } from "@effect-zapier/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as TestClock from "effect/TestClock"
import { FakeZapier } from "../src/index.js"

const { sample, Endpoint } = FakeZapier
const user = Domain.EndUser.make({ userId: "alice", tenantId: "acme" })

const LongPolled = (seed: FakeZapier.Seed = FakeZapier.sampleSeed) =>
  EmbeddedActions.layer.pipe(
    Layer.provideMerge(FakeZapier.layer(seed, { runReads: "long-poll", longPollWait: "30 seconds" })),
    Layer.provideMerge(ConnectionStore.layerMemory)
  )

/** Creates a run of send_channel_message scripted to take `after`, for alice (connected). */
const created = (after: Duration.DurationInput) =>
  Effect.gen(function* () {
    const zapier = yield* FakeZapier.FakeZapier
    const connection = yield* zapier.addConnection(user, sample.slack)
    yield* zapier.scriptRuns(sample.slack, sample.sendChannelMessage, FakeZapier.RunScript.succeed(after, ["ok"]))
    const action = yield* (yield* ActionCatalog.ActionCatalog).resolve(
      user,
      sample.slack,
      sample.sendChannelMessage,
      "WRITE"
    )
    const runs = yield* ActionRuns.ActionRuns
    const runId = yield* runs.create(user, { action: action.id, connection: connection.id, inputs: {} })
    return { zapier, runs, runId }
  })

describe("FakeZapier.layer with long-poll reads", () => {
  it.effect("a read is held until the run ends (one read, no lag), or pending and held when the wait passes", () =>
    Effect.gen(function* () {
      const { zapier, runs, runId } = yield* created("45 seconds")
      const start = yield* TestClock.currentTimeMillis
      const first = yield* Effect.fork(runs.get(user, runId))
      yield* TestClock.adjust("30 seconds")
      const pending = yield* Fiber.join(first)
      assert.strictEqual(pending._tag, "RunPending")
      if (pending._tag === "RunPending") {
        assert.isTrue(pending.held)
        assert.deepStrictEqual(pending.retryAfter, Duration.seconds(1))
      }
      const second = yield* Effect.fork(runs.get(user, runId))
      yield* TestClock.adjust("15 seconds")
      const ended = yield* Fiber.join(second)
      assert.strictEqual(ended._tag, "RunSucceeded")
      const ledger = yield* zapier.ledger
      const reads = ledger.requests.filter((r) => r.endpoint === Endpoint.readRun)
      assert.deepStrictEqual(
        reads.map((r) => [r.at - start, r.status, r.path]),
        [
          [30_000, 200, `/actions/v2/runs/${runId}`],
          [45_000, 200, `/actions/v2/runs/${runId}`]
        ]
      )
      assert.strictEqual(FakeZapier.requestsByEndpoint(ledger)[Endpoint.getRun], undefined, "no /v2 read")
    }).pipe(Effect.provide(LongPolled()))
  )

  it.effect("EmbeddedActions.run over it: a 10 s run costs one read, seen as it ends", () =>
    Effect.gen(function* () {
      const zapier = yield* FakeZapier.FakeZapier
      yield* zapier.addConnection(user, sample.slack)
      yield* zapier.scriptRuns(sample.slack, sample.sendChannelMessage, FakeZapier.RunScript.succeed("10 seconds", []))
      const actions = yield* EmbeddedActions.EmbeddedActions
      const fiber = yield* Effect.fork(
        actions.run({
          user,
          app: sample.slack,
          action: sample.sendChannelMessage,
          inputs: { channel: "#a", text: "x" }
        })
      )
      yield* TestClock.adjust("11 seconds")
      const result = yield* Fiber.join(fiber)
      const ledger = yield* zapier.ledger
      const info = yield* zapier.run(result.runId)
      const reads = ledger.requests.filter((r) => r.endpoint === Endpoint.readRun)
      assert.strictEqual(reads.length, 1)
      assert.strictEqual(reads[0]!.at, info.finishesAt)
    }).pipe(Effect.provide(LongPolled()))
  )

  it.effect("held reads go out at once: a 300 ms run is read once, as it ends (not at ~500 ms, then again)", () =>
    Effect.gen(function* () {
      const zapier = yield* FakeZapier.FakeZapier
      yield* zapier.addConnection(user, sample.slack)
      yield* zapier.scriptRuns(sample.slack, sample.sendChannelMessage, FakeZapier.RunScript.succeed("300 millis", []))
      const actions = yield* EmbeddedActions.EmbeddedActions
      for (let i = 0; i < 3; i++) {
        const fiber = yield* Effect.fork(
          actions.run({
            user,
            app: sample.slack,
            action: sample.sendChannelMessage,
            inputs: { channel: "#a", text: "x" }
          })
        )
        yield* TestClock.adjust("2 seconds")
        const result = yield* Fiber.join(fiber)
        const reads = (yield* zapier.ledger).requests.filter(
          (r) => r.endpoint === Endpoint.readRun && r.path.endsWith(result.runId)
        )
        assert.strictEqual(reads.length, 1)
        assert.strictEqual(reads[0]!.at, (yield* zapier.run(result.runId)).finishesAt, "held until it ended")
      }
    }).pipe(Effect.provide(LongPolled()))
  )

  it.effect("reads have their own bucket: a 429 once it is spent, while /v2 requests still pass (and back)", () =>
    Effect.gen(function* () {
      const { zapier, runs, runId } = yield* created("0 seconds")
      // The setup spent 1 request of the /v2 bucket (the action lookup; the create is the 2nd of 3).
      yield* zapier.setRateLimit(3)
      for (let i = 0; i < 3; i++) assert.strictEqual((yield* runs.get(user, runId))._tag, "RunSucceeded")
      const limited = yield* Effect.flip(runs.get(user, runId))
      assert.strictEqual(limited._tag, "RateLimited")
      // The /v2 bucket is untouched by the reads.
      const catalog = yield* ActionCatalog.ActionCatalog
      yield* catalog.resolve(user, sample.slack, sample.sendChannelMessage, "WRITE")
      const ledger = yield* zapier.ledger
      const reads = ledger.requests.filter((r) => r.endpoint === Endpoint.readRun)
      assert.deepStrictEqual(
        reads.map((r) => r.status),
        [200, 200, 200, 429],
        "every read is in the ledger, the refused one too"
      )
      yield* TestClock.adjust("60 seconds")
      assert.strictEqual((yield* runs.get(user, runId))._tag, "RunSucceeded", "after the cooldown")
    }).pipe(Effect.provide(LongPolled()))
  )
})

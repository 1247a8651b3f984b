/**
 * `holdRuns`: a gate that keeps an action's runs pending until the test releases it, so a test that must see a run
 * waiting waits on that event (`awaitRead`) instead of racing the script's pending window. In memory, on the
 * TestClock; over HTTP in FakeZapierServer.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { ActionCatalog, ActionRuns, ConnectionStore, Domain, EmbeddedActions } from "@effect-zapier/core"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import { FakeZapier } from "../src/index.js"

const { sample } = FakeZapier
const user = Domain.EndUser.make({ userId: "alice", tenantId: "acme" })

const Polled = (options?: FakeZapier.LayerOptions) =>
  EmbeddedActions.layer.pipe(
    Layer.provideMerge(FakeZapier.layer(FakeZapier.sampleSeed, options)),
    Layer.provideMerge(ConnectionStore.layerMemory)
  )

/** Creates a run of `action` of the sample Slack app for alice (connected), as a client would. */
const create = (action: Domain.ActionKey = sample.sendChannelMessage) =>
  Effect.gen(function* () {
    const zapier = yield* FakeZapier.FakeZapier
    const connection =
      (yield* zapier.connections(user, sample.slack))[0] ?? (yield* zapier.addConnection(user, sample.slack))
    const resolved = yield* (yield* ActionCatalog.ActionCatalog).resolve(user, sample.slack, action, "WRITE")
    return yield* (yield* ActionRuns.ActionRuns).create(user, {
      action: resolved.id,
      connection: connection.id,
      inputs: {}
    })
  })

const statusOf = (runId: Domain.ActionRunId) =>
  Effect.flatMap(ActionRuns.ActionRuns, (runs) => Effect.map(runs.get(user, runId), (state) => state._tag))

describe("FakeZapier holdRuns", () => {
  it.effect("a held run reads pending past its scripted end; awaitRead sees the read; released, it ends at once", () =>
    Effect.gen(function* () {
      const zapier = yield* FakeZapier.FakeZapier
      const gate = yield* zapier.holdRuns(sample.slack, sample.sendChannelMessage) // scripted: success after 2 s
      const runId = yield* create()
      const read = yield* Effect.fork(gate.awaitRead)
      yield* TestClock.adjust("10 seconds")
      assert.isTrue(Option.isNone(yield* Fiber.poll(read)), "no read yet")
      assert.strictEqual(yield* statusOf(runId), "RunPending", "held 8 s past its scripted end")
      assert.strictEqual(yield* Fiber.join(read), runId)
      assert.strictEqual((yield* zapier.run(runId)).finishesAt, undefined)
      yield* gate.release
      assert.strictEqual(yield* statusOf(runId), "RunSucceeded", "its scripted end has passed: it ends at release")
      const info = yield* zapier.run(runId)
      assert.strictEqual(info.finishesAt, info.createdAt + 10_000)
      assert.deepStrictEqual(
        FakeZapier.pollsOf(yield* zapier.ledger, runId).map((p) => p.status),
        ["waiting", "success"]
      )
      yield* gate.release // twice: nothing more
      assert.strictEqual(yield* statusOf(runId), "RunSucceeded")
    }).pipe(Effect.provide(Polled()))
  )

  it.effect("released before its scripted end, a run still ends as scripted; later runs are not held", () =>
    Effect.gen(function* () {
      const zapier = yield* FakeZapier.FakeZapier
      const gate = yield* zapier.holdRuns(sample.slack, sample.sendChannelMessage)
      const runId = yield* create()
      yield* TestClock.adjust("500 millis")
      yield* gate.release
      assert.strictEqual(yield* statusOf(runId), "RunPending")
      yield* TestClock.adjust("1500 millis")
      assert.strictEqual(yield* statusOf(runId), "RunSucceeded", "at its scripted 2 s")
      const later = yield* create()
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual(yield* statusOf(later), "RunSucceeded", "created after the release: not held")
    }).pipe(Effect.provide(Polled()))
  )

  it.effect("a gate holds only its action's runs; a run under two gates waits for both", () =>
    Effect.gen(function* () {
      const zapier = yield* FakeZapier.FakeZapier
      const first = yield* zapier.holdRuns(sample.slack, sample.sendChannelMessage)
      const second = yield* zapier.holdRuns(sample.slack, sample.sendChannelMessage)
      const held = yield* create()
      const other = yield* create(sample.sendDirectMessage)
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(yield* statusOf(other), "RunFailed", "another action: not held")
      yield* first.release
      assert.strictEqual(yield* statusOf(held), "RunPending", "the second gate still holds it")
      yield* second.release
      assert.strictEqual(yield* statusOf(held), "RunSucceeded")
    }).pipe(Effect.provide(Polled()))
  )

  it.effect("a long-poll read of a held run is answered when the gate opens, not when its wait runs out", () =>
    Effect.gen(function* () {
      const zapier = yield* FakeZapier.FakeZapier
      const gate = yield* zapier.holdRuns(sample.slack, sample.sendChannelMessage)
      const runId = yield* create()
      yield* TestClock.adjust("5 seconds")
      const read = yield* Effect.fork(statusOf(runId))
      yield* TestClock.adjust("1 second")
      assert.isTrue(Option.isNone(yield* Fiber.poll(read)), "held")
      yield* gate.release
      // No clock moves from here: the read ends because the gate opened (its 30 s wait has 29 s left).
      assert.strictEqual(yield* Fiber.join(read), "RunSucceeded")
      const reads = (yield* zapier.ledger).requests.filter((r) => r.endpoint === FakeZapier.Endpoint.readRun)
      assert.strictEqual(reads.length, 1)
    }).pipe(Effect.provide(Polled({ runReads: "long-poll", longPollWait: "30 seconds" })))
  )

  it.effect("an unknown app or action is NotFound", () =>
    Effect.gen(function* () {
      const zapier = yield* FakeZapier.FakeZapier
      assert.strictEqual((yield* Effect.flip(zapier.holdRuns("nope", sample.sendChannelMessage)))._tag, "NotFound")
      const unknown = yield* Effect.flip(zapier.holdRuns(sample.slack, "nope"))
      assert.strictEqual(unknown.endpoint, "FakeZapier.holdRuns")
    }).pipe(Effect.provide(Polled()))
  )
})

import { assert, describe, it } from "@effect/vitest"
import { WorkflowEngine } from "@effect/workflow"
import { ConnectionStore, Domain, EmbeddedActions, RunCallbacks, RunEvents } from "@effect-zapier/core"
import { FakeZapier } from "@effect-zapier/testing"
import { DurableLayers, DurableRuns, RunRegistry, type RunWorkflow } from "@effect-zapier/workflow"
import { DateTime, Duration, Effect, Fiber, Layer, Option, Redacted, TestClock } from "effect"

const { sample } = FakeZapier
const user = sample.user

const Zapier = EmbeddedActions.layer.pipe(
  Layer.provideMerge(Layer.merge(FakeZapier.layer(FakeZapier.sampleSeed), ConnectionStore.layerMemory))
)

/** A fresh model and engine per test; `registry` wraps the runs table (to simulate an earlier attempt). */
const TestLayer = (registry: Layer.Layer<RunRegistry.RunRegistry> = RunRegistry.layerMemory) =>
  DurableLayers.layerWith(WorkflowEngine.layerMemory, registry).pipe(Layer.provideMerge(Zapier))

const request = (overrides: Partial<RunWorkflow.DurableRequest> = {}): RunWorkflow.DurableRequest => ({
  user,
  app: sample.slack,
  action: sample.sendChannelMessage,
  inputs: { channel: "#general", text: "Hello" },
  ...overrides
})

/** Drives the TestClock in steps until `effect` is done (the engine forks its executions). */
const drive = <A, E, R>(effect: Effect.Effect<A, E, R>, steps = 400) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    for (let i = 0; i < steps; i++) {
      if (fiber.unsafePoll() !== null) break
      yield* TestClock.adjust("1 second")
    }
    return yield* Fiber.join(fiber)
  })

/** With core's run callbacks configured (an in-memory bus): the create carries the callback URL. */
const WithCallbacks = TestLayer().pipe(
  Layer.provideMerge(
    RunCallbacks.layer({ url: "https://partner.example/zapier/runs" }).pipe(Layer.provideMerge(RunEvents.layerMemory()))
  )
)

const services = Effect.all({ runs: DurableRuns.DurableRuns, zapier: FakeZapier.FakeZapier })

describe("DurableRuns (memory engine)", () => {
  it.effect("runs an action to its result, readable by key", () =>
    Effect.gen(function* () {
      const { runs, zapier } = yield* services
      const connection = yield* zapier.addConnection(user, sample.slack)
      const executionId = yield* runs.start("job-1", request())
      const result = yield* drive(runs.await("job-1"))
      assert.deepStrictEqual(result.results, [
        { ok: true, channel: "#general", text: "Hello", ts: "1711900000.000100" }
      ])
      const status = yield* runs.result("job-1")
      assert.strictEqual(status._tag, "Succeeded")
      assert.strictEqual(status.executionId, executionId)
      const ledger = yield* zapier.ledger
      assert.strictEqual(ledger.runs.length, 1)
      assert.strictEqual(ledger.runs[0]!.connection, connection.id)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("the same key twice is one execution and one create", () =>
    Effect.gen(function* () {
      const { runs, zapier } = yield* services
      yield* zapier.addConnection(user, sample.slack)
      const first = yield* runs.start("job-2", request())
      const second = yield* runs.start("job-2", request())
      assert.strictEqual(first, second)
      yield* drive(runs.await("job-2"))
      const third = yield* runs.start("job-2", request())
      assert.strictEqual(third, first)
      yield* drive(runs.await("job-2"))
      assert.strictEqual((yield* zapier.ledger).runs.length, 1)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("the same key with another request is a typed conflict, and the first run is kept", () =>
    Effect.gen(function* () {
      const { runs, zapier } = yield* services
      yield* zapier.addConnection(user, sample.slack)
      yield* runs.start("job-3", request())
      // the same request with its keys in another order is the same request
      yield* runs.start("job-3", request({ inputs: { text: "Hello", channel: "#general" } }))
      const conflict = yield* Effect.flip(runs.start("job-3", request({ inputs: { channel: "#random", text: "Hi" } })))
      assert.strictEqual(conflict._tag, "DurableRunConflict")
      assert.include(conflict.message, "job-3")
      const result = yield* drive(runs.await("job-3"))
      assert.strictEqual((result.results[0] as { channel: string }).channel, "#general")
      assert.strictEqual((yield* zapier.ledger).runs.length, 1)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("an unknown key is a typed not-found for result, await and interrupt", () =>
    Effect.gen(function* () {
      const { runs } = yield* services
      const errors = [
        yield* Effect.flip(runs.result("nope")),
        yield* Effect.flip(runs.await("nope")),
        yield* Effect.flip(runs.interrupt("nope"))
      ]
      assert.deepStrictEqual(
        errors.map((e) => e._tag),
        ["DurableRunNotFound", "DurableRunNotFound", "DurableRunNotFound"]
      )
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("a run that ends in error is a typed ActionRunFailed", () =>
    Effect.gen(function* () {
      const { runs, zapier } = yield* services
      yield* zapier.addConnection(user, sample.slack)
      yield* runs.start("job-4", request({ action: sample.sendDirectMessage, inputs: { user: "U1", text: "Hi" } }))
      const error = yield* Effect.flip(drive(runs.await("job-4")))
      assert.strictEqual(error._tag, "ActionRunFailed")
      const status = yield* runs.result("job-4")
      assert.strictEqual(status._tag === "Failed" && status.error._tag, "ActionRunFailed")
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("no connection: ConnectionRequired with a Connect link, and no create", () =>
    Effect.gen(function* () {
      const { runs, zapier } = yield* services
      yield* runs.start("job-5", request())
      const error = yield* Effect.flip(drive(runs.await("job-5")))
      assert.strictEqual(error._tag, "ConnectionRequired")
      assert.strictEqual((yield* zapier.ledger).runs.length, 0)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("a run still pending at its timeout is a PollTimeout naming the run", () =>
    Effect.gen(function* () {
      const { runs, zapier } = yield* services
      yield* zapier.addConnection(user, sample.slack)
      yield* runs.start(
        "job-6",
        request({ action: sample.exportChannelHistory, inputs: { channel: "#general" }, timeout: Duration.seconds(30) })
      )
      const error = yield* Effect.flip(drive(runs.await("job-6")))
      assert.strictEqual(error._tag, "PollTimeout")
      const ledger = yield* zapier.ledger
      assert.strictEqual(error._tag === "PollTimeout" && error.runId, ledger.runs[0]!.runId)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("interrupt stops a pending run at its next wait; await fails DurableRunInterrupted", () =>
    Effect.gen(function* () {
      const { runs, zapier } = yield* services
      yield* zapier.addConnection(user, sample.slack)
      yield* runs.start("job-7", request({ action: sample.exportChannelHistory, inputs: { channel: "#general" } }))
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual((yield* runs.result("job-7"))._tag, "Running")
      yield* runs.interrupt("job-7")
      const error = yield* Effect.flip(drive(runs.await("job-7")))
      assert.strictEqual(error._tag, "DurableRunInterrupted")
      const polls = (yield* zapier.ledger).polls.length
      yield* TestClock.adjust("5 minutes")
      assert.strictEqual((yield* zapier.ledger).polls.length, polls, "no poll after the interrupt")
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("a callback completes the run at once, from its run id", () =>
    Effect.gen(function* () {
      const { runs, zapier } = yield* services
      yield* zapier.addConnection(user, sample.slack)
      yield* runs.start("job-8", request({ action: sample.exportChannelHistory, inputs: { channel: "#general" } }))
      yield* TestClock.adjust("2 seconds")
      const runId = (yield* zapier.ledger).runs[0]!.runId
      const running = yield* runs.result("job-8")
      assert.deepStrictEqual(running._tag === "Running" && running.runId, runId, "the running status names the run")
      const pollsBefore = (yield* zapier.ledger).polls.length
      const delivered = yield* runs.complete(Domain.RunSucceeded.make({ runId, results: [{ exported: 12 }] }))
      assert.isTrue(delivered)
      const result = yield* drive(runs.await("job-8"))
      assert.deepStrictEqual(result.results, [{ exported: 12 }])
      assert.isAtMost((yield* zapier.ledger).polls.length, pollsBefore + 1)
      const unknown = yield* runs.complete(
        Domain.RunSucceeded.make({ runId: Domain.ActionRunId.make("not-ours"), results: [] })
      )
      assert.isFalse(unknown)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("a replay that finds the create claimed without a run id is RunOutcomeUnknown, never a second POST", () => {
    // The runs table as an earlier attempt left it: claimed just before the POST, the answer never recorded.
    const crashedEarlier = Layer.effect(
      RunRegistry.RunRegistry,
      Effect.map(RunRegistry.makeMemory, (inner) =>
        RunRegistry.RunRegistry.of({
          ...inner,
          claimCreate: (key, info) =>
            Effect.zipRight(inner.claimCreate(key, { ...info, at: 1_000 }), inner.claimCreate(key, info))
        })
      )
    )
    return Effect.gen(function* () {
      const { runs, zapier } = yield* services
      const connection = yield* zapier.addConnection(user, sample.slack)
      yield* runs.start("job-9", request())
      const error = yield* Effect.flip(drive(runs.await("job-9")))
      if (error._tag !== "RunOutcomeUnknown") return assert.fail(`expected RunOutcomeUnknown, got ${error._tag}`)
      assert.strictEqual(error.connection, connection.id)
      assert.strictEqual(error.action, sample.sendChannelMessage)
      assert.isDefined(error.actionId)
      assert.strictEqual(
        Option.map(Option.fromNullable(error.sentAt), DateTime.toEpochMillis).pipe(Option.getOrThrow),
        1_000
      )
      assert.strictEqual((yield* zapier.ledger).runs.length, 0, "no POST at all")
    }).pipe(Effect.provide(TestLayer(crashedEarlier)))
  })

  it.effect("with RunCallbacks: the run's end published on the bus completes the run, with no poll before it", () =>
    Effect.gen(function* () {
      const { runs, zapier } = yield* services
      const bus = yield* RunEvents.RunEvents
      yield* zapier.addConnection(user, sample.slack)
      yield* runs.start("job-10", request({ action: sample.exportChannelHistory, inputs: { channel: "#general" } }))
      yield* TestClock.adjust("1 second")
      const runId = (yield* zapier.ledger).runs[0]!.runId
      // the create registered its routing token for this run (another token is refused)
      assert.strictEqual(yield* bus.check(runId, Redacted.make("not-the-token")), "mismatch")
      yield* bus.publish(
        RunEvents.RunEvent.make({
          runId,
          state: Domain.RunSucceeded.make({ runId, results: [{ via: "callback" }] }),
          source: "callback",
          receivedAt: yield* DateTime.now
        })
      )
      const result = yield* drive(runs.await("job-10"))
      assert.deepStrictEqual(result.results, [{ via: "callback" }])
      assert.strictEqual((yield* zapier.ledger).polls.length, 0, "the safety net's first poll had not come yet")
    }).pipe(Effect.provide(WithCallbacks))
  )

  it.effect("with RunCallbacks and no callback: the safety-net polls end the run", () =>
    Effect.gen(function* () {
      const { runs, zapier } = yield* services
      yield* zapier.addConnection(user, sample.slack)
      yield* runs.start("job-11", request())
      const result = yield* drive(runs.await("job-11"))
      assert.strictEqual(result.results.length, 1)
      const polls = (yield* zapier.ledger).polls.length
      assert.isAtLeast(polls, 1)
      assert.isAtMost(polls, 2, "a 2 s run is found by the first safety-net poll (15 s)")
    }).pipe(Effect.provide(WithCallbacks))
  )
})

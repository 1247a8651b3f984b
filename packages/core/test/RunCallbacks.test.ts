import { assert, describe, it } from "@effect/vitest"
import { ConnectionStore, Domain, EmbeddedActions, Errors, RunCallbacks, RunEvents } from "@effect-zapier/core"
import { FakeZapier } from "@effect-zapier/testing"
import { DateTime, Duration, Effect, Fiber, Layer, Option, Redacted, TestClock } from "effect"

const { sample } = FakeZapier
const user = sample.user
const callbackUrl = "https://partner.example/zapier/runs?tenant=acme"

/** The program with run callbacks over a memory bus, the fake and a memory store; fresh per test. */
const TestLayer = (bus: Layer.Layer<RunEvents.RunEvents> = RunEvents.layerMemory(), url = callbackUrl) =>
  EmbeddedActions.layer.pipe(
    Layer.provideMerge(RunCallbacks.layer({ url })),
    Layer.provideMerge(bus),
    Layer.provideMerge(Layer.merge(FakeZapier.layer(FakeZapier.sampleSeed), ConnectionStore.layerMemory))
  )

const services = Effect.all({
  actions: EmbeddedActions.EmbeddedActions,
  zapier: FakeZapier.FakeZapier,
  bus: RunEvents.RunEvents
})

const request = (overrides: Partial<EmbeddedActions.RunRequest> = {}): EmbeddedActions.RunRequest => ({
  user,
  app: sample.slack,
  action: sample.sendChannelMessage,
  inputs: { channel: "#general", text: "Hello" },
  ...overrides
})

const succeeded = (runId: Domain.ActionRunId, token?: Redacted.Redacted<string>) =>
  Effect.map(DateTime.now, (receivedAt) =>
    RunEvents.RunEvent.make({
      runId,
      state: Domain.RunSucceeded.make({ runId, results: [{ via: "callback" }] }),
      source: "callback",
      receivedAt,
      ...(token !== undefined ? { routingToken: token } : {})
    })
  )

describe("RunEvents.layerMemory", () => {
  it.effect("delivers the first event of a run once; a duplicate answers false and changes nothing", () =>
    Effect.gen(function* () {
      const bus = yield* RunEvents.RunEvents
      const runId = Domain.ActionRunId.make("run-1")
      const waiting = yield* Effect.fork(bus.await(runId))
      const first = yield* succeeded(runId)
      assert.isTrue(yield* bus.publish(first))
      const failed = RunEvents.RunEvent.make({
        runId,
        state: Domain.RunFailed.make({ runId, errors: [] }),
        source: "callback",
        receivedAt: first.receivedAt
      })
      assert.isFalse(yield* bus.publish(failed))
      assert.strictEqual((yield* Fiber.join(waiting)).state._tag, "RunSucceeded")
      // A late await completes at once from the kept event.
      assert.strictEqual((yield* bus.await(runId)).state._tag, "RunSucceeded")
    }).pipe(Effect.provide(RunEvents.layerMemory()))
  )

  it.effect("checks a routing token against the one expected for the run ", () =>
    Effect.gen(function* () {
      const bus = yield* RunEvents.RunEvents
      const a = Domain.ActionRunId.make("run-a")
      const b = Domain.ActionRunId.make("run-b")
      const tokenA = yield* RunEvents.mintToken
      const tokenB = yield* RunEvents.mintToken
      yield* bus.expect(a, tokenA)
      yield* bus.expect(b, tokenB)
      assert.strictEqual(yield* bus.check(a, tokenA), "match")
      assert.strictEqual(yield* bus.check(a, tokenB), "mismatch")
      assert.strictEqual(yield* bus.check(Domain.ActionRunId.make("run-c"), tokenA), "unknown")
    }).pipe(Effect.provide(RunEvents.layerMemory()))
  )

  it.effect("forgets expectations and events after the retention, and beyond its capacity", () =>
    Effect.gen(function* () {
      const bus = yield* RunEvents.RunEvents
      const token = yield* RunEvents.mintToken
      for (let i = 0; i < 5; i++) yield* bus.expect(Domain.ActionRunId.make(`run-${i}`), token)
      assert.strictEqual(yield* bus.check(Domain.ActionRunId.make("run-0"), token), "unknown", "evicted (capacity 3)")
      assert.strictEqual(yield* bus.check(Domain.ActionRunId.make("run-4"), token), "match")
      const runId = Domain.ActionRunId.make("run-4")
      yield* bus.publish(yield* succeeded(runId))
      yield* TestClock.adjust("61 seconds")
      assert.strictEqual(yield* bus.check(runId, token), "unknown")
      assert.isTrue(Option.isNone(yield* bus.lookup(runId)))
    }).pipe(Effect.provide(RunEvents.layerMemory({ retention: "1 minute", capacity: 3 })))
  )

  it.effect("interrupting an await leaves no waiter behind", () =>
    Effect.gen(function* () {
      const bus = yield* RunEvents.RunEvents
      const runId = Domain.ActionRunId.make("run-i")
      const fiber = yield* Effect.fork(bus.await(runId))
      yield* TestClock.adjust("1 second")
      yield* Fiber.interrupt(fiber)
      assert.isTrue(yield* bus.publish(yield* succeeded(runId)))
    }).pipe(Effect.provide(RunEvents.layerMemory()))
  )
})

describe("RunCallbacks.urlFor", () => {
  it("appends the token as a query parameter, keeping the URL's own query and dropping a fragment", () => {
    const token = Redacted.make("tok_en")
    assert.strictEqual(RunCallbacks.urlFor("https://p.example/cb", "t", token), "https://p.example/cb?t=tok_en")
    assert.strictEqual(RunCallbacks.urlFor("https://p.example/cb?a=1", "t", token), "https://p.example/cb?a=1&t=tok_en")
    assert.strictEqual(RunCallbacks.urlFor("https://p.example/cb?#x", "t", token), "https://p.example/cb?t=tok_en")
  })
})

describe("EmbeddedActions with run callbacks", () => {
  it.effect("sends the callback URL with a fresh token, records it, and completes from the bus without a poll", () =>
    Effect.gen(function* () {
      const { actions, zapier, bus } = yield* services
      yield* zapier.addConnection(user, sample.slack)
      const handle = yield* actions.start(request())
      assert.isDefined(handle.callbackToken)
      const token = handle.callbackToken!
      assert.strictEqual(yield* bus.check(handle.runId, token), "match")
      const fiber = yield* Effect.fork(actions.await(user, handle.runId, { callback: true }))
      yield* TestClock.adjust("2 seconds")
      yield* bus.publish(yield* succeeded(handle.runId, token))
      const result = yield* Fiber.join(fiber)
      assert.deepStrictEqual(result.results, [{ via: "callback" }])
      const ledger = yield* zapier.ledger
      assert.strictEqual(FakeZapier.pollsOf(ledger, handle.runId).length, 0, "no poll before the safety net's first")
      const created = ledger.runs[0]!
      assert.strictEqual(created.runId, handle.runId)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("a dropped callback: the safety net polls at 15 s, then ×2 up to 60 s, and finds the end", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      yield* zapier.addConnection(user, sample.slack)
      yield* zapier.scriptRuns(
        sample.slack,
        sample.sendChannelMessage,
        FakeZapier.RunScript.succeed(Duration.seconds(80), ["ok"])
      )
      const fiber = yield* Effect.fork(actions.run(request()))
      yield* TestClock.adjust("10 minutes")
      const result = yield* Fiber.join(fiber)
      const ledger = yield* zapier.ledger
      const run = ledger.runs[0]!
      assert.strictEqual(result.runId, run.runId)
      const at = FakeZapier.pollsOf(ledger, run.runId).map((p) => p.at - run.at)
      // Jittered ±20 %: the polls fall in [12, 18], [36, 54] and [84, 126] s, so the third finds the 80 s run.
      assert.strictEqual(at.length, 3)
      assert.isAtLeast(at[0]!, 12_000)
      assert.isAtMost(at[0]!, 18_000)
      assert.isAtLeast(at[1]!, 36_000)
      assert.isAtMost(at[1]!, 54_000)
      assert.isAtLeast(at[2]!, 84_000)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("a callback contradicted by a later poll that still saw the run pending is discarded", () =>
    Effect.gen(function* () {
      const { actions, zapier, bus } = yield* services
      yield* zapier.addConnection(user, sample.slack)
      yield* zapier.scriptRuns(
        sample.slack,
        sample.sendChannelMessage,
        FakeZapier.RunScript.succeed(Duration.seconds(40), ["from the poll"])
      )
      const handle = yield* actions.start(request())
      // An event received at t=0 (e.g. delayed on its way through the bus) that arrives after the poll at ~15 s.
      const early = yield* succeeded(handle.runId, handle.callbackToken)
      const fiber = yield* Effect.fork(actions.await(user, handle.runId, { callback: true }))
      yield* TestClock.adjust("20 seconds")
      yield* bus.publish(early)
      yield* TestClock.adjust("5 minutes")
      const result = yield* Fiber.join(fiber)
      assert.deepStrictEqual(result.results, ["from the poll"])
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("a failing bus: start records nothing and the run is polled on the plain schedule", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      yield* zapier.addConnection(user, sample.slack)
      const handle = yield* actions.start(request())
      assert.isUndefined(handle.callbackToken)
      const fiber = yield* Effect.fork(actions.await(user, handle.runId, { callback: true }))
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(fiber)
      const polls = FakeZapier.pollsOf(yield* zapier.ledger, handle.runId)
      assert.isBelow(polls[0]!.at - (yield* zapier.ledger).runs[0]!.at, 1000, "the plain schedule's first poll")
    }).pipe(
      Effect.provide(
        TestLayer(
          Layer.succeed(RunEvents.RunEvents, {
            expect: () => Effect.fail(new Errors.RunEventsUnavailable({ operation: "expect", reason: "down" })),
            check: () => Effect.fail(new Errors.RunEventsUnavailable({ operation: "check", reason: "down" })),
            publish: () => Effect.fail(new Errors.RunEventsUnavailable({ operation: "publish", reason: "down" })),
            lookup: () => Effect.fail(new Errors.RunEventsUnavailable({ operation: "lookup", reason: "down" })),
            await: () => Effect.fail(new Errors.RunEventsUnavailable({ operation: "await", reason: "down" }))
          })
        )
      )
    )
  )

  it.effect("callback: false creates the run without a callback", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      yield* zapier.addConnection(user, sample.slack)
      const handle = yield* actions.start(request({ callback: false }))
      assert.isUndefined(handle.callbackToken)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("without RunCallbacks in context, runs carry no callback and are polled on the plain schedule", () =>
    Effect.gen(function* () {
      const actions = yield* EmbeddedActions.EmbeddedActions
      const zapier = yield* FakeZapier.FakeZapier
      yield* zapier.addConnection(user, sample.slack)
      const fiber = yield* Effect.fork(actions.run(request()))
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(fiber)
      const ledger = yield* zapier.ledger
      assert.isAtMost(FakeZapier.pollsOf(ledger, ledger.runs[0]!.runId)[0]!.at - ledger.runs[0]!.at, 1000)
    }).pipe(
      Effect.provide(
        EmbeddedActions.layer.pipe(
          Layer.provideMerge(Layer.merge(FakeZapier.layer(FakeZapier.sampleSeed), ConnectionStore.layerMemory))
        )
      )
    )
  )

  it.effect("the routing token never shows in the handle's printout or JSON", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      yield* zapier.addConnection(user, sample.slack)
      const handle = yield* actions.start(request({ callbackToken: Redacted.make("canary-routing-token") }))
      assert.notInclude(String(handle), "canary-routing-token")
      assert.notInclude(JSON.stringify(handle), "canary-routing-token")
      assert.strictEqual(Redacted.value(handle.callbackToken!), "canary-routing-token")
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect(
    "a callback URL Zapier refuses (400 on callback_url): the run is created without it, and so are later ones",
    () =>
      Effect.gen(function* () {
        const { actions, zapier } = yield* services
        yield* zapier.addConnection(user, sample.slack)
        const first = yield* actions.start(request())
        assert.isUndefined(first.callbackToken, "created without a callback")
        const second = yield* actions.start(request())
        assert.isUndefined(second.callbackToken)
        const ledger = yield* zapier.ledger
        assert.strictEqual(ledger.runs.length, 2, "one run per start")
        const creates = ledger.requests.filter((r) => r.endpoint === "POST /v2/action-runs/")
        assert.deepStrictEqual(
          creates.map((r) => r.status),
          [400, 200, 200],
          "refused once, then never sent again"
        )
        const fiber = yield* Effect.fork(
          actions.await(user, first.runId, { callback: first.callbackToken !== undefined })
        )
        yield* TestClock.adjust("1 minute")
        yield* Fiber.join(fiber)
      }).pipe(Effect.provide(TestLayer(RunEvents.layerMemory(), "http://partner.example/zapier/runs")))
  )
})

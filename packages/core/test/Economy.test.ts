import { assert, describe, it } from "@effect/vitest"
import { ActionRuns, Caching, ConnectionStore, Domain, EmbeddedActions, Errors, Polling } from "@effect-zapier/core"
import { FakeZapier } from "@effect-zapier/testing"
import { Clock, Duration, Effect, Fiber, Layer, Random, TestClock } from "effect"
import * as Cache from "../src/internal/cache.js"
import * as Economy from "../src/internal/economy.js"
import * as Learned from "../src/internal/learned.js"

const { sample } = FakeZapier
const user = sample.user
const other = Domain.EndUser.make({ userId: "u-8", tenantId: "acme" })

const TestLayer = EmbeddedActions.layer.pipe(
  Layer.provideMerge(Layer.merge(FakeZapier.layer(FakeZapier.sampleSeed), ConnectionStore.layerMemory))
)
const services = Effect.all({ actions: EmbeddedActions.EmbeddedActions, zapier: FakeZapier.FakeZapier })

/** Runs an effect that polls to completion (the sample runs take at most 10 s), driving the TestClock ahead. */
const settle = <A, E, R>(effect: Effect.Effect<A, E, R>, ahead: Duration.DurationInput = "30 seconds") =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    yield* TestClock.adjust(ahead)
    return yield* Fiber.join(fiber)
  })

const send = (overrides: Partial<EmbeddedActions.RunRequest> = {}): EmbeddedActions.RunRequest => ({
  user,
  app: sample.slack,
  action: sample.sendChannelMessage,
  inputs: { channel: "#general", text: "Hello" },
  ...overrides
})

const count = (ledger: FakeZapier.Ledger, endpoint: string) =>
  ledger.requests.filter((r) => r.endpoint === endpoint).length

/** Connects `who` to Slack through Connect UI. */
const connect = (who: Domain.EndUser) =>
  Effect.gen(function* () {
    const { actions, zapier } = yield* services
    const required = yield* Effect.flip(actions.ensureConnection(who, sample.slack))
    if (required._tag !== "ConnectionRequired") return assert.fail(`expected ConnectionRequired, got ${required._tag}`)
    return yield* actions.completeConnection(who, sample.slack, yield* zapier.approveConnect(required.link!))
  })

describe("connection cache", () => {
  it.effect("a connection verified within connectionTtl is used without listing; after it, listed again", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      yield* connect(user)
      yield* zapier.resetLedger
      yield* settle(actions.run(send()))
      yield* settle(actions.run(send()))
      yield* settle(actions.run(send()))
      assert.strictEqual(count(yield* zapier.ledger, FakeZapier.Endpoint.authentications), 1)
      yield* TestClock.adjust("10 minutes")
      yield* settle(actions.run(send()))
      assert.strictEqual(count(yield* zapier.ledger, FakeZapier.Endpoint.authentications), 2)
    }).pipe(Effect.provide(TestLayer))
  )

  it.effect("connectionTtl zero lists before every run", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      yield* connect(user)
      yield* zapier.resetLedger
      yield* settle(actions.run(send()))
      yield* settle(actions.run(send()))
      assert.strictEqual(count(yield* zapier.ledger, FakeZapier.Endpoint.authentications), 2)
    }).pipe(
      Effect.provide(TestLayer),
      Effect.provideService(Caching.Policy, { ...Caching.defaults, connectionTtl: Duration.zero })
    )
  )

  it.effect("one user's verified connection never serves another user", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      yield* connect(user)
      yield* settle(actions.run(send()))
      const failed = yield* Effect.flip(settle(actions.run(send({ user: other }))))
      assert.strictEqual(failed._tag, "ConnectionRequired")
      yield* connect(other)
      yield* zapier.resetLedger
      yield* settle(actions.run(send({ user: other })))
      const runs = (yield* zapier.ledger).runs
      assert.strictEqual(runs.length, 1)
      assert.deepStrictEqual(runs[0]!.user, other)
      assert.notStrictEqual(runs[0]!.connection, (yield* zapier.connections(user, sample.slack))[0]!.id)
    }).pipe(Effect.provide(TestLayer))
  )

  it.effect("an authentication failure re-verifies: the error says the connection expired and carries a link", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      const connection = yield* connect(user)
      yield* settle(actions.run(send()))
      yield* zapier.expireConnection(connection.id)
      yield* zapier.resetLedger
      // Verified a moment ago: the run goes ahead without listing, and Zapier fails it with `authentication`.
      const failed = yield* Effect.flip(settle(actions.run(send({ reconnectLink: true }))))
      if (failed._tag !== "ActionRunFailed") return assert.fail(`expected ActionRunFailed, got ${failed._tag}`)
      assert.isTrue(failed.needsReconnect)
      assert.strictEqual(failed.connectionStatus, "expired")
      assert.strictEqual(failed.reconnect?.reconnect, connection.id)
      assert.include(failed.message, "checked again: it is expired")
      assert.include(failed.message, "reconnect link")
      assert.strictEqual(count(yield* zapier.ledger, FakeZapier.Endpoint.authentications), 1)
      // The cached verification is gone: the next run lists and asks for a reconnect.
      const next = yield* Effect.flip(settle(actions.run(send())))
      if (next._tag !== "ConnectionRequired") return assert.fail(`expected ConnectionRequired, got ${next._tag}`)
      assert.strictEqual(next.reason, "expired")
      assert.strictEqual(count(yield* zapier.ledger, FakeZapier.Endpoint.authentications), 2)
    }).pipe(Effect.provide(TestLayer))
  )

  it.effect("without reconnectLink the error says so but mints no link", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      const connection = yield* connect(user)
      yield* settle(actions.run(send()))
      yield* zapier.expireConnection(connection.id)
      yield* zapier.resetLedger
      const failed = yield* Effect.flip(settle(actions.run(send())))
      if (failed._tag !== "ActionRunFailed") return assert.fail(`expected ActionRunFailed, got ${failed._tag}`)
      assert.strictEqual(failed.connectionStatus, "expired")
      assert.isUndefined(failed.reconnect)
      assert.strictEqual((yield* zapier.ledger).exchanges.filter((e) => e.kind === "connect").length, 0)
    }).pipe(Effect.provide(TestLayer))
  )

  it.effect("bounded: past maxUsers the least recently used user's verification is dropped", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      const third = Domain.EndUser.make({ userId: "u-9", tenantId: "acme" })
      for (const who of [user, other, third]) yield* connect(who)
      yield* zapier.resetLedger
      for (const who of [user, other, third]) yield* settle(actions.run(send({ user: who })))
      // user was evicted by third; other and third are still verified.
      for (const who of [other, third, user]) yield* settle(actions.run(send({ user: who })))
      const lists = (yield* zapier.ledger).requests.filter((r) => r.endpoint === FakeZapier.Endpoint.authentications)
      assert.deepStrictEqual(
        lists.map((r) => r.user?.userId),
        [user.userId, other.userId, third.userId, user.userId]
      )
    }).pipe(Effect.provide(TestLayer), Effect.provideService(Caching.Policy, { ...Caching.defaults, maxUsers: 2 }))
  )
})

describe("input fields cache", () => {
  it.effect("the pre-run check reuses fields fetched within fieldsTtl, per connection and field-set variant", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      yield* connect(user)
      yield* zapier.resetLedger
      yield* settle(actions.run(send()))
      yield* settle(actions.run(send({ inputs: { channel: "#random", text: "Again" } })))
      assert.strictEqual(count(yield* zapier.ledger, FakeZapier.Endpoint.inputs), 1)
      // send_as_bot changes the set of fields: another variant, fetched (and its own checks apply).
      const invalid = yield* Effect.flip(
        settle(actions.run(send({ inputs: { channel: "#a", text: "b", send_as_bot: true } })))
      )
      assert.strictEqual(invalid._tag, "InvalidInputs")
      assert.strictEqual(count(yield* zapier.ledger, FakeZapier.Endpoint.inputs), 2)
      yield* TestClock.adjust("10 minutes")
      yield* settle(actions.run(send()))
      assert.strictEqual(count(yield* zapier.ledger, FakeZapier.Endpoint.inputs), 3)
    }).pipe(Effect.provide(TestLayer))
  )

  it.effect("cached fields still refuse bad inputs", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      yield* connect(user)
      yield* settle(actions.run(send()))
      yield* zapier.resetLedger
      const invalid = yield* Effect.flip(settle(actions.run(send({ inputs: { channel: "#general" } }))))
      assert.instanceOf(invalid, Errors.InvalidInputs)
      assert.strictEqual(count(yield* zapier.ledger, FakeZapier.Endpoint.inputs), 0)
      assert.strictEqual((yield* zapier.ledger).runs.length, 0)
    }).pipe(Effect.provide(TestLayer))
  )

  it.effect("fieldsTtl zero fetches before every run", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      yield* connect(user)
      yield* zapier.resetLedger
      yield* settle(actions.run(send()))
      yield* settle(actions.run(send()))
      assert.strictEqual(count(yield* zapier.ledger, FakeZapier.Endpoint.inputs), 2)
    }).pipe(Effect.provide(TestLayer), Effect.provideService(Caching.Policy, Caching.off))
  )
})

describe("adaptive polling", () => {
  const runOf = (seconds: number) =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      const result = yield* settle(actions.run(send({ timeout: Duration.minutes(20) })), "20 minutes")
      const ledger = yield* zapier.ledger
      const info = yield* zapier.run(result.runId)
      const polls = FakeZapier.pollsOf(ledger, result.runId)
      assert.strictEqual(info.finishesAt! - info.createdAt, seconds * 1000)
      return { gets: polls.length, lag: polls[polls.length - 1]!.at - info.finishesAt! }
    })

  for (const seconds of [2, 60, 300]) {
    it.effect(`learns a ${seconds} s action: the first runs keep the lag bound, later ones cost fewer GETs`, () =>
      Effect.gen(function* () {
        const { zapier } = yield* services
        yield* connect(user)
        yield* zapier.scriptRuns(
          sample.slack,
          sample.sendChannelMessage,
          FakeZapier.RunScript.succeed(`${seconds} seconds`, [])
        )
        const bound = 1.2 * Math.min(5_000, 500 + 0.5 * seconds * 1000)
        const first = yield* runOf(seconds)
        assert.isAtMost(first.lag, bound)
        for (let i = 0; i < 2; i++) yield* runOf(seconds)
        const learned = []
        for (let i = 0; i < 6; i++) learned.push(yield* runOf(seconds))
        for (const run of learned) {
          assert.isAtMost(run.gets, 5, `a learned run made ${run.gets} GETs (the first made ${first.gets})`)
          assert.isAtMost(run.lag, bound)
        }
        const mean = learned.reduce((n, r) => n + r.gets, 0) / learned.length
        assert.isAtMost(mean, 3)
        if (seconds >= 60) assert.isBelow(mean, first.gets / 5)
      }).pipe(Effect.provide(TestLayer), Effect.withRandom(Random.make(seconds)))
    )
  }

  it.effect("a read that waited before it was made (a rate limiter, a retry) does not teach a shorter run", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      yield* connect(user)
      // Runs of 1 s; for the first eight, every status read waits 1 s before the model reads the run.
      yield* zapier.scriptRuns(sample.slack, sample.sendChannelMessage, FakeZapier.RunScript.succeed("1 second", []))
      yield* zapier.injectFault({
        endpoint: FakeZapier.Endpoint.getRun,
        times: 8,
        fault: FakeZapier.Fault.delay("1 second")
      })
      for (let i = 0; i < 8; i++) yield* settle(actions.run(send()))
      // The reads were sent ~0.5 s after creation but saw the runs ended only at ~1.5 s. Learned from their
      // answers, the plan reads these 1 s runs twice at most; learned from their sends it would poll at ~0.4 s,
      // long before they end, and read each three times.
      for (let i = 0; i < 4; i++) {
        const result = yield* settle(actions.run(send()))
        const polls = FakeZapier.pollsOf(yield* zapier.ledger, result.runId)
        assert.isAtMost(polls.length, 2, `run ${i} after the waits: ${polls.map((p) => p.status).join(", ")}`)
      }
    }).pipe(Effect.provide(TestLayer), Effect.withRandom(Random.make(7)))
  )

  /**
   * The fake's runs read over a simulated wire: each read reports when it goes out (`ActionRuns.ReadSent`, as the
   * http layer's reads do), takes `leg` to reach the fake and `leg` back; the first `waited` reads wait `wait`
   * before going out (as for a rate limiter's slot or a retry's delay).
   */
  const overTheWire = (leg: Duration.DurationInput, waited = 0, wait: Duration.DurationInput = Duration.zero) =>
    EmbeddedActions.layer.pipe(
      Layer.provide(
        Layer.effect(
          ActionRuns.ActionRuns,
          Effect.gen(function* () {
            const runs = yield* ActionRuns.ActionRuns
            let reads = 0
            return ActionRuns.ActionRuns.of({
              create: runs.create,
              get: (who, runId) =>
                Effect.gen(function* () {
                  if (reads++ < waited) yield* Effect.sleep(wait)
                  const report = yield* ActionRuns.ReadSent
                  report(yield* Clock.currentTimeMillis)
                  yield* Effect.sleep(leg)
                  const state = yield* runs.get(who, runId)
                  yield* Effect.sleep(leg)
                  return state
                })
            })
          })
        )
      ),
      Layer.provideMerge(Layer.merge(FakeZapier.layer(FakeZapier.sampleSeed), ConnectionStore.layerMemory))
    )

  it.effect("runs finished when created: the first read comes down to the wire's leg, not a few round trips", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      yield* connect(user)
      yield* zapier.scriptRuns(sample.slack, sample.sendChannelMessage, FakeZapier.RunScript.succeed(0, []))
      const firstReadAfter = []
      for (let i = 0; i < 100; i++) {
        const result = yield* settle(actions.run(send()), "5 seconds")
        const info = yield* zapier.run(result.runId)
        const polls = FakeZapier.pollsOf(yield* zapier.ledger, result.runId)
        assert.strictEqual(polls.length, 1)
        firstReadAfter.push(polls[0]!.at - info.createdAt)
      }
      // Each read reaches the fake 100 ms after it goes out and is answered 100 ms later. Learned from when the
      // reads went out, the plan's poll comes down from the fixed schedule's 500 ms towards the creation (it goes
      // out ~250 ms after it by the 100th run, ~140 ms by the 160th), earlier than the fixed schedule ever polls
      // (500 ms ± 20 %); learned from their answers it settles at a few round trips (~650 ms by the 100th run).
      for (const after of firstReadAfter.slice(-8)) assert.isAtMost(after, 100 + 350)
    }).pipe(Effect.provide(overTheWire("100 millis")), Effect.withRandom(Random.make(7)))
  )

  it.effect("a read that waited before it went out reports when it went out: 1 s runs are still read twice", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      yield* connect(user)
      yield* zapier.scriptRuns(sample.slack, sample.sendChannelMessage, FakeZapier.RunScript.succeed("1 second", []))
      // The first eight reads wait 1 s before they go out (sent at ~0.5 s, they see the runs ended at ~1.5 s):
      // counted from when the poll was sent instead, the plan would poll at ~0.4 s and read each run three times.
      for (let i = 0; i < 8; i++) yield* settle(actions.run(send()))
      for (let i = 0; i < 4; i++) {
        const result = yield* settle(actions.run(send()))
        const polls = FakeZapier.pollsOf(yield* zapier.ledger, result.runId)
        assert.isAtMost(polls.length, 2, `run ${i} after the waits: ${polls.map((p) => p.status).join(", ")}`)
      }
    }).pipe(Effect.provide(overTheWire("10 millis", 8, "1 second")), Effect.withRandom(Random.make(7)))
  )

  it("an await that begins after the planned polls reads at once; one before them keeps those ahead", () => {
    const millis = (ds: ReadonlyArray<Duration.Duration>) => ds.map(Duration.toMillis)
    assert.deepStrictEqual(millis(Economy.plannedDelays([100, 400], 1_000, 1_050)), [50, 300])
    assert.deepStrictEqual(millis(Economy.plannedDelays([100, 400], 1_000, 1_200)), [200])
    assert.deepStrictEqual(millis(Economy.plannedDelays([100, 400], 1_000, 1_400)), [0])
    assert.deepStrictEqual(millis(Economy.plannedDelays([], 1_000, 1_400)), [])
  })

  it.effect("adaptive: false keeps the fixed schedule", () =>
    Effect.gen(function* () {
      const { zapier } = yield* services
      yield* connect(user)
      yield* zapier.scriptRuns(sample.slack, sample.sendChannelMessage, FakeZapier.RunScript.succeed("60 seconds", []))
      const gets = []
      for (let i = 0; i < 6; i++) gets.push((yield* runOf(60)).gets)
      for (const n of gets) assert.isAtLeast(n, 15)
    }).pipe(Effect.provide(TestLayer), Effect.provideService(Polling.Policy, { ...Polling.defaults, adaptive: false }))
  )
})

describe("bounds of the memory", () => {
  it("the per-user cache holds at most maxUsers users and maxPerUser entries each", () => {
    const cache = Cache.make<number>({ maxUsers: 3, maxPerUser: 2 })
    for (let u = 0; u < 10; u++) {
      const who = Domain.EndUser.make({ userId: `u${u}`, tenantId: "t" })
      for (let k = 0; k < 5; k++) cache.set(who, `k${k}`, k, 0)
    }
    assert.deepStrictEqual(cache.size(), { users: 3, entries: 6 })
    const last = Domain.EndUser.make({ userId: "u9", tenantId: "t" })
    assert.strictEqual(cache.get(last, "k4")?.value, 4)
    assert.isUndefined(cache.get(last, "k0"))
    // Users are told apart even when their ids would collide if concatenated.
    const a = Domain.EndUser.make({ userId: "b|c", tenantId: "a" })
    const b = Domain.EndUser.make({ userId: "c", tenantId: "a|b" })
    cache.set(a, "x", 1, 0)
    assert.isUndefined(cache.get(b, "x"))
  })

  it("learned durations are bounded per action and in actions", () => {
    const learned = Learned.make({ maxKeys: 4, samplesPerKey: 5, minSamples: 3 })
    for (let k = 0; k < 100; k++) for (let i = 0; i < 50; i++) learned.record(`a${k}`, { lo: 1000, hi: 1000 })
    assert.strictEqual(learned.size(), 4)
    assert.deepStrictEqual(learned.plan("a0"), [])
    assert.deepStrictEqual(learned.plan("a99"), [1000])
  })

  it("an action whose runs all ended before their first read: the polls come down to them in a few windows", () => {
    // A full window of runs seen ended at their first read, 400 ms after creation: one poll at 3/4 of that.
    const even = Learned.make()
    for (let i = 0; i < 32; i++) even.record("a", { lo: 0, hi: 400 })
    const plan = even.plan("a")
    assert.strictEqual(plan.length, 1)
    assert.closeTo(plan[0]!, 300, 1)
    // Each run ends at once and is seen by a read sent 2 ms after the plan's first offset (the timer's lateness):
    // the first offset comes down from the fixed schedule's 500 ms to a few times that lateness.
    const instant = Learned.make()
    instant.record("b", { lo: 0, hi: 500 })
    instant.record("b", { lo: 0, hi: 500 })
    for (let i = 0; i < 600; i++) instant.record("b", { lo: 0, hi: (instant.plan("b")[0] ?? 500) + 2 })
    assert.isAtMost(instant.plan("b")[0]!, 40)
    // Fewer runs than a window keep the width of the split (where each ended in (0, hi] is not known).
    const few = Learned.make()
    for (let i = 0; i < 8; i++) few.record("c", { lo: 0, hi: 400 })
    assert.isAbove(few.plan("c")[0]!, 300)
  })

  it("the plan costs fewer reads than the fixed schedule, for less lag, over the durations it learned", () => {
    const learned = Learned.make({ maxKeys: 4, samplesPerKey: 100, minSamples: 3 })
    for (let i = 1; i <= 100; i++) learned.record("a", { lo: i * 100, hi: i * 100 })
    const plan = learned.plan("a")
    const points = Array.from({ length: 100 }, (_, i) => ({ x: (i + 1) * 100, w: 1 }))
    const fixed = Learned.evaluate(Learned.fixedOffsets(Learned.defaultFixed, 10_000), points)
    const mine = Learned.evaluate(plan, points)
    assert.isBelow(mine.reads, fixed.reads)
    assert.isAtMost(mine.lag, fixed.lag)
    for (let i = 1; i < plan.length; i++) assert.isAbove(plan[i]!, plan[i - 1]!)
    assert.isAtLeast(plan[plan.length - 1]!, 10_000, "up to the longest run seen")
  })

  it("an action whose runs take as long every time: one or two polls just about its duration", () => {
    const learned = Learned.make()
    for (let i = 0; i < 10; i++) learned.record("a", { lo: 59_000 + i * 100, hi: 60_500 + i * 50 })
    const plan = learned.plan("a")
    assert.isAtMost(plan.length, 2)
    for (const at of plan) assert.isTrue(at > 58_000 && at < 62_000, `a poll at ${at}`)
  })

  it("a run whose first read already saw it ended stands for the runs that ended that early, not for (0, hi]", () => {
    const learned = Learned.make()
    // Two runs polled on the fixed schedule ended between 299.6 s and 300.1 s; later ones were read once, at ~300.5 s.
    learned.record("a", { lo: 299_600, hi: 300_100 })
    learned.record("a", { lo: 299_650, hi: 300_150 })
    for (let i = 0; i < 6; i++) learned.record("a", { lo: 0, hi: 300_500 })
    const plan = learned.plan("a")
    assert.isAtLeast(plan[0]!, 290_000, `no poll long before the end: ${plan.join(", ")}`)
    // With nothing seen that early, the interval is all that is known.
    const blind = Learned.make()
    for (let i = 0; i < 4; i++) blind.record("b", { lo: 0, hi: 2_000 })
    assert.isBelow(blind.plan("b")[0]!, 2_000)
  })
})

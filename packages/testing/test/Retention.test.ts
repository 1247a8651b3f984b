import { assert, describe, it } from "@effect/vitest"
import { ActionCatalog, ActionRuns, Domain } from "@effect-zapier/core"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import { FakeZapier } from "../src/index.js"

const { sample } = FakeZapier
const alice = Domain.EndUser.make({ userId: "alice", tenantId: "acme" })

const services = Effect.all({
  zapier: FakeZapier.FakeZapier,
  catalog: ActionCatalog.ActionCatalog,
  runs: ActionRuns.ActionRuns
})

/** Alice connected to slack; `create` starts a run of `key` with a fresh action id. */
const setup = (key: Domain.ActionKey = sample.sendChannelMessage) =>
  Effect.gen(function* () {
    const { catalog, runs, zapier } = yield* services
    const connection = yield* zapier.addConnection(alice, sample.slack)
    const create = Effect.flatMap(catalog.resolve(alice, sample.slack, key), (action) =>
      runs.create(alice, { action: action.id, connection: connection.id, inputs: {} })
    )
    return { connection, create }
  })

describe("FakeZapier retention (Seed.retention)", () => {
  it.effect("a finished run is kept 7 days after it ended (Zapier's retention), then reads as NotFound", () =>
    Effect.gen(function* () {
      const { runs, zapier } = yield* services
      const { create } = yield* setup()
      const runId = yield* create
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual((yield* runs.get(alice, runId))._tag, "RunSucceeded")
      yield* TestClock.adjust("6 days")
      assert.strictEqual((yield* runs.get(alice, runId))._tag, "RunSucceeded")
      yield* TestClock.adjust("1 day")
      assert.strictEqual((yield* Effect.flip(runs.get(alice, runId)))._tag, "NotFound")
      assert.strictEqual((yield* Effect.flip(zapier.run(runId)))._tag, "NotFound")
      assert.deepStrictEqual(yield* zapier.runs, [])
      // The ledger still has it: retention bounds the model, not what tests count.
      assert.deepStrictEqual(
        (yield* zapier.ledger).runs.map((r) => r.runId),
        [runId]
      )
    }).pipe(Effect.provide(FakeZapier.layer(FakeZapier.sampleSeed)))
  )

  it.effect("beyond maxRuns the oldest ended runs go; runs not ended yet stay", () =>
    Effect.gen(function* () {
      const { runs, zapier } = yield* services
      const pending = yield* (yield* setup(sample.exportChannelHistory)).create
      const { create } = yield* setup()
      const ended: Array<Domain.ActionRunId> = []
      for (let i = 0; i < 12; i++) {
        ended.push(yield* create)
        yield* TestClock.adjust("2 seconds")
      }
      const waiting = yield* create
      // Pruned once the runs held pass the bound by a tenth (rounded up): the newest 3 ended runs and more stay.
      const kept = (yield* zapier.runs).map((r) => r.id)
      const keptEnded = kept.filter((id) => ended.includes(id))
      assert.deepStrictEqual(kept, [pending, ...keptEnded, waiting])
      assert.deepStrictEqual(keptEnded, ended.slice(ended.length - keptEnded.length))
      assert.isAtLeast(keptEnded.length, 3)
      assert.isAtMost(keptEnded.length, 5)
      assert.strictEqual((yield* Effect.flip(runs.get(alice, ended[0]!)))._tag, "NotFound")
      assert.strictEqual((yield* runs.get(alice, ended[11]!))._tag, "RunSucceeded")
      assert.strictEqual((yield* runs.get(alice, pending))._tag, "RunPending")
      assert.strictEqual((yield* runs.get(alice, waiting))._tag, "RunPending")
    }).pipe(Effect.provide(FakeZapier.layer({ ...FakeZapier.sampleSeed, retention: { maxRuns: 3 } })))
  )

  it.effect("beyond maxActionIds the oldest issued action ids are unknown to a create", () =>
    Effect.gen(function* () {
      const { catalog, runs, zapier } = yield* services
      const connection = yield* zapier.addConnection(alice, sample.slack)
      const resolve = catalog.resolve(alice, sample.slack, sample.sendChannelMessage)
      const first = yield* resolve
      const issued = () => Effect.map(zapier.ledger, (l) => l.lookups.flatMap((x) => x.ids).length)
      while ((yield* issued()) <= 25) yield* resolve
      const last = yield* resolve
      const stale = yield* Effect.flip(runs.create(alice, { action: first.id, connection: connection.id, inputs: {} }))
      assert.include(stale.message, "Unknown action id")
      const runId = yield* runs.create(alice, { action: last.id, connection: connection.id, inputs: {} })
      assert.strictEqual((yield* runs.get(alice, runId))._tag, "RunPending")
    }).pipe(Effect.provide(FakeZapier.layer({ ...FakeZapier.sampleSeed, retention: { maxActionIds: 20 } })))
  )
})

import { PersistenceError } from "@effect/cluster/ClusterError"
import { SqlError } from "@effect/sql/SqlError"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Ref, Schedule, Schema } from "effect"
import { describeStoreDefect, isStoreDefect, retryStoreDefects } from "../src/internal/store.js"

const persistence = new PersistenceError({
  cause: new SqlError({ cause: new Error("terminating connection due to administrator command"), message: "boom" })
})
/** What the engine keeps of a defect in its journal (and gives back when the run is read). */
const roundTrip = Schema.decodeUnknownSync(Schema.Defect)(Schema.encodeSync(Schema.Defect)(persistence))

describe("store failures under the engine", () => {
  it("are recognised live and as read back from the journal (a plain Error with the name only)", () => {
    assert.isTrue(isStoreDefect(persistence))
    assert.isTrue(isStoreDefect(new SqlError({ cause: new Error("down") })))
    assert.instanceOf(roundTrip, Error)
    assert.isFalse("_tag" in (roundTrip as object))
    assert.isTrue(isStoreDefect(roundTrip))
    assert.isFalse(isStoreDefect(new Error("a bug")))
    assert.isFalse(isStoreDefect({ _tag: "ActionRunFailed" }))
    assert.match(describeStoreDefect(roundTrip), /^PersistenceError/)
    assert.notInclude(describeStoreDefect(persistence), "\n")
  })

  it.effect("an execution that dies of the store is run again until it passes; other defects are not retried", () =>
    Effect.gen(function* () {
      const attempts = yield* Ref.make(0)
      const retried = yield* Ref.make<ReadonlyArray<string>>([])
      const flaky = Effect.flatMap(
        Ref.updateAndGet(attempts, (n) => n + 1),
        (n) => (n < 3 ? Effect.die(n === 1 ? persistence : roundTrip) : Effect.succeed("done"))
      )
      const retry = retryStoreDefects(Schedule.recurs(5), (d) => Ref.update(retried, (l) => [...l, d]))
      assert.strictEqual(yield* retry(flaky), "done")
      assert.strictEqual(yield* Ref.get(attempts), 3)
      assert.lengthOf(yield* Ref.get(retried), 2)

      const bug = new Error("a bug")
      const once = yield* Ref.make(0)
      const exit = yield* Effect.exit(
        retry(
          Effect.zipRight(
            Ref.update(once, (n) => n + 1),
            Effect.die(bug)
          )
        )
      )
      assert.isTrue(Exit.isFailure(exit) && Cause.squash(exit.cause) === bug)
      assert.strictEqual(yield* Ref.get(once), 1)

      // the schedule exhausted: the store's defect comes out as it was
      const down = yield* Effect.exit(retryStoreDefects(Schedule.recurs(2), () => Effect.void)(Effect.die(persistence)))
      assert.isTrue(Exit.isFailure(down) && Cause.squash(down.cause) === persistence)
    })
  )
})

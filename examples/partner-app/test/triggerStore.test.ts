import * as Statement from "@effect/sql/Statement"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { assert, describe, it } from "@effect/vitest"
import { Domain } from "@effect-zapier/core"
import { Effect, Layer, Ref } from "effect"
import * as TriggerStore from "../src/TriggerStore.js"

const Store = TriggerStore.layer.pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" })))

const key = Domain.InboxKey.make("watch-1")
const message = (n: number) => Domain.MessageId.make(`m-${n}`)

describe("TriggerStore.events", () => {
  it.effect("the total and the rows agree while the consumer records events beside the read", () =>
    Effect.gen(function* () {
      const store = yield* TriggerStore.TriggerStore
      for (let n = 0; n < 3; n++) assert.isTrue(yield* store.record(key, message(n), { n }))
      // A writer that records one more event right before each statement the read sends (what a consumer handling
      // messages beside the page can do between two statements).
      const next = yield* Ref.make(3)
      const writer: Statement.Statement.Transformer = (statement) =>
        Effect.gen(function* () {
          const [text] = statement.compile()
          if (/^\s*SELECT\b/i.test(text) && text.includes("partner_trigger_events")) {
            const n = yield* Ref.getAndUpdate(next, (i) => i + 1)
            yield* Statement.withTransformerDisabled(Effect.orDie(store.record(key, message(n), { n })))
          }
          return statement
        })
      const { latest, total } = yield* Statement.withTransformer(store.events(key, 50), writer)
      const recorded = (yield* Ref.get(next)) - 3
      assert.isAtLeast(recorded, 1)
      assert.strictEqual(total, latest.length)
      assert.strictEqual(total, 3 + recorded)
      // The newest first: the one the writer recorded last is at the top.
      assert.strictEqual(latest[0]?.messageId, message(2 + recorded))
    }).pipe(Effect.provide(Store))
  )

  it.effect("the latest `limit` events, newest first, and how many there are", () =>
    Effect.gen(function* () {
      const store = yield* TriggerStore.TriggerStore
      assert.deepStrictEqual(yield* store.events(key, 2), { total: 0, latest: [] })
      for (let n = 0; n < 5; n++) yield* store.record(key, message(n), { n })
      assert.isFalse(yield* store.record(key, message(4), { n: 4 }))
      const { latest, total } = yield* store.events(key, 2)
      assert.strictEqual(total, 5)
      assert.deepStrictEqual(
        latest.map((e) => e.messageId),
        [message(4), message(3)]
      )
      assert.deepStrictEqual(latest[0]?.payload, { n: 4 })
      assert.deepStrictEqual(yield* store.events(key, 0), { total: 5, latest: [] })
    }).pipe(Effect.provide(Store))
  )
})

/**
 * The partner backend's trigger watches over real loopback HTTP, on a fake Zapier: the app's triggers, a watch
 * validated and ensured once per user and trigger (one inbox, one consumer, one event stream however many
 * requests), every event emitted in the fake recorded once and acknowledged, the consumer started again by a
 * restarted backend, and a watch stopped (its inbox deleted).
 */
import { assert, describe, it } from "@effect/vitest"
import { FakeZapier } from "@effect-zapier/testing"
import { Context, Duration, Effect } from "effect"
import { client, dataDir, fakeZapier, options, partnerApp } from "./fixtures.js"

interface Body {
  readonly _tag?: string
  readonly message?: string
  readonly [key: string]: unknown
}
const body = (answer: { readonly body: unknown }) => answer.body as Body

interface WatchBody {
  readonly key: string
  readonly inbox: string
  readonly state: string
  readonly running: boolean
  readonly total: number
  readonly events: ReadonlyArray<{ readonly messageId: string; readonly payload?: unknown }>
}

/** Polls until `check` holds, under a real-time guard that only catches a hang. */
const eventually = <A>(what: string, read: Effect.Effect<A>, check: (a: A) => boolean) =>
  Effect.gen(function* () {
    let last = yield* read
    while (!check(last)) {
      yield* Effect.sleep("50 millis")
      last = yield* read
    }
    return last
  }).pipe(
    Effect.timeoutFail({
      duration: Duration.seconds(60),
      onTimeout: () => new Error(`timed out waiting for ${what}`)
    }),
    Effect.orDie
  )

/** The event streams the fake served: one per consumer started (the fake never drops them here). */
const eventStreams = (control: FakeZapier.Control) =>
  Effect.map(control.ledger, (l) => l.requests.filter((r) => r.endpoint === "GET /inboxes/{id}/events").length)

describe("trigger watches", () => {
  it.scopedLive(
    "one inbox and one consumer per user and trigger; every event shown once and acked; resumed after a restart",
    () =>
      Effect.gen(function* () {
        const zapier = yield* fakeZapier()
        const control = Context.get(zapier, FakeZapier.FakeZapier)
        yield* control.setInboxSettings({ activation: "100 millis" })
        const dir = yield* dataDir
        const app = yield* partnerApp(zapier, options(dir))
        const c = client(app.url)
        yield* c.login("u-42", "acme")

        const listed = yield* c.call("GET", "/api/apps/slack/triggers")
        assert.strictEqual(listed.status, 200)
        assert.deepStrictEqual(
          (listed.body as ReadonlyArray<{ key: string }>).map((t) => t.key),
          ["list_channels", "new_channel_message"]
        )
        assert.strictEqual((yield* c.call("GET", "/api/apps/google-sheets/triggers")).status, 200)

        const request = { app: "slack", trigger: "new_channel_message", inputs: { channel: "#general" } }
        // No connection yet: the Connect link, nothing ensured.
        const needed = yield* c.call("POST", "/api/watches", request)
        assert.strictEqual(needed.status, 409)
        assert.strictEqual(body(needed)._tag, "ConnectionNeeded")
        yield* c.call(
          "POST",
          "/api/apps/slack/connection",
          yield* control.approveConnect(String(body(needed).connectUrl), { mode: "popup" })
        )

        const invalid = yield* c.call("POST", "/api/watches", { ...request, inputs: {} })
        assert.strictEqual(invalid.status, 422)
        assert.deepStrictEqual(
          (body(invalid).problems as ReadonlyArray<{ field: string }>).map((p) => p.field),
          ["channel"]
        )
        assert.strictEqual((yield* control.inboxes).length, 0, "no inbox for invalid inputs")

        // Three watch requests at once (a double click, another tab): one inbox, one consumer.
        const answers = yield* Effect.all(
          [1, 2, 3].map(() => c.call("POST", "/api/watches", request)),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(
          answers.map((a) => a.status),
          [200, 200, 200]
        )
        const watch = answers[0]!.body as WatchBody
        assert.deepStrictEqual(new Set(answers.map((a) => (a.body as WatchBody).key)), new Set([watch.key]))
        assert.isAtMost(watch.key.length, 100)
        assert.strictEqual(watch.state, "consuming")
        const inboxes = yield* control.inboxes
        assert.deepStrictEqual(
          inboxes.map((i) => [i.id, i.key]),
          [[watch.inbox, watch.key]]
        )
        yield* eventually("the consumer's event stream", eventStreams(control), (n) => n === 1)

        // The same trigger with other inputs: an inbox's subscription cannot change.
        const conflict = yield* c.call("POST", "/api/watches", { ...request, inputs: { channel: "#random" } })
        assert.strictEqual(conflict.status, 409)
        assert.strictEqual(body(conflict)._tag, "WatchConflict")

        const emitted = yield* control.emitTriggerEvents(watch.inbox, 12)
        const watches = c.call("GET", "/api/watches").pipe(Effect.map((a) => a.body as ReadonlyArray<WatchBody>))
        const seen = yield* eventually("12 events on the watch", watches, (w) => w[0]?.total === 12)
        assert.deepStrictEqual(new Set(seen[0]!.events.map((e) => e.messageId)), new Set(emitted))
        yield* eventually("12 acks", control.inboxCounts, (n) => n.acked === 12)
        assert.strictEqual(yield* eventStreams(control), 1, "one event stream: one consumer")
        assert.isTrue(seen[0]!.running)

        // Another user sees none of it.
        const other = client(app.url)
        yield* other.login("u-43", "acme")
        assert.deepStrictEqual((yield* other.call("GET", "/api/watches")).body, [])
        assert.strictEqual((yield* other.call("DELETE", `/api/watches/${encodeURIComponent(watch.key)}`)).status, 404)

        // The backend stops; events arrive meanwhile; the restarted backend's consumer picks them up.
        yield* app.close
        const whileDown = yield* control.emitTriggerEvents(watch.inbox, 3)
        const again = yield* partnerApp(zapier, options(dir))
        const c2 = client(again.url)
        yield* c2.login("u-42", "acme")
        const after = yield* eventually(
          "15 events after the restart",
          c2.call("GET", "/api/watches").pipe(Effect.map((a) => a.body as ReadonlyArray<WatchBody>)),
          (w) => w[0]?.total === 15
        )
        for (const id of whileDown)
          assert.include(
            after[0]!.events.map((e) => e.messageId),
            id
          )
        yield* eventually("15 acks", control.inboxCounts, (n) => n.acked === 15)
        assert.strictEqual(yield* eventStreams(control), 2, "the restarted backend started one consumer")
        const messages = yield* control.inboxMessages
        assert.deepStrictEqual(
          messages.map((m) => m.status),
          Array(15).fill("acked")
        )

        // Stop: the consumer ends, the inbox is deleted at Zapier, the watch shows stopped.
        const stop = yield* c2.call("DELETE", `/api/watches/${encodeURIComponent(watch.key)}`)
        assert.strictEqual(stop.status, 204)
        const stopped = (yield* c2.call("GET", "/api/watches")).body as ReadonlyArray<WatchBody>
        assert.strictEqual(stopped[0]!.state, "stopped")
        assert.isFalse(stopped[0]!.running)
        assert.strictEqual(
          (yield* control.ledger).requests.filter((r) => r.endpoint === "DELETE /inboxes/{id}").length,
          1
        )
      }),
    120_000
  )

  it.scopedLive(
    "an inbox paused at Zapier: the restarted backend's consumer stops and the watch shows why",
    () =>
      Effect.gen(function* () {
        const zapier = yield* fakeZapier()
        const control = Context.get(zapier, FakeZapier.FakeZapier)
        yield* control.setInboxSettings({ activation: "100 millis" })
        const dir = yield* dataDir
        const app = yield* partnerApp(zapier, options(dir))
        const c = client(app.url)
        yield* c.login("u-42", "acme")
        const needed = yield* c.call("GET", "/api/apps/slack/connection")
        yield* c.call(
          "POST",
          "/api/apps/slack/connection",
          yield* control.approveConnect(String(body(needed).connectUrl), { mode: "popup" })
        )
        const watch = (yield* c.call("POST", "/api/watches", {
          app: "slack",
          trigger: "new_channel_message",
          inputs: { channel: "#general" }
        })).body as WatchBody
        yield* app.close
        yield* control.pauseInbox(watch.inbox, "user")
        // Started again, the consumer leases at once: paused and drained, the inbox refuses, the consumer ends.
        const again = yield* partnerApp(zapier, options(dir))
        const c2 = client(again.url)
        yield* c2.login("u-42", "acme")
        const stopped = yield* eventually(
          "the watch to stop",
          c2.call("GET", "/api/watches").pipe(Effect.map((a) => a.body as ReadonlyArray<Body>)),
          (w) => w[0]?.state === "stopped"
        )
        assert.strictEqual((stopped[0]!.problem as Body).tag, "InboxPaused")
        assert.match(String((stopped[0]!.problem as Body).message), /paused/)
        assert.isFalse(stopped[0]!.running)
      }),
    120_000
  )
})

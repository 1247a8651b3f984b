/**
 * The Trigger Inbox consumer against FakeZapier.layer (in memory) on the TestClock: ensure and wait for `active`,
 * wake-ups without polling, one lease and one ack per batch, release on failure, payload decoding, quarantine
 * reported, interruption releasing what is held, paused inboxes with a reconnect link, and a chaos plan (faults
 * on lease, ack and the event stream, interruption mid-handler, a restart) after which every message is acked or
 * quarantined and reported, with the handler executions per message printed and bounded.
 */
import { assert, describe, it } from "@effect/vitest"
import { Connections, Domain, Errors, TriggerInbox, TriggerInboxes } from "@effect-zapier/core"
import { FakeZapier } from "@effect-zapier/testing"
import { type Duration, Effect, Fiber, Layer, Ref, Schema, TestClock } from "effect"

const { sample } = FakeZapier
const user = sample.user
const key = Domain.InboxKey.make("new-messages-general")

const Zapier = () => {
  const fake = FakeZapier.layer(FakeZapier.sampleSeed)
  return TriggerInbox.layer.pipe(Layer.provideMerge(fake))
}

const services = Effect.all({
  consumer: TriggerInbox.TriggerInbox,
  inboxes: TriggerInboxes.TriggerInboxes,
  zapier: FakeZapier.FakeZapier,
  connections: Connections.Connections
})

/** Connects the user to Slack and returns the subscription to the sample trigger. */
const subscription = Effect.gen(function* () {
  const { zapier } = yield* services
  const connection = yield* zapier.addConnection(user, sample.slack)
  return Domain.Subscription.make({
    app: sample.slack,
    action: sample.newChannelMessage,
    inputs: { channel: "#general" },
    connection: connection.id
  })
})

/** Advances the TestClock in steps until `done` holds (or fails the test after `steps`). */
const until = (done: Effect.Effect<boolean>, step: Duration.DurationInput = "100 millis", steps = 20_000) =>
  Effect.gen(function* () {
    for (let i = 0; i < steps; i++) {
      if (yield* done) return
      yield* TestClock.adjust(step)
    }
    return assert.fail("the condition did not hold in time")
  })

/** Interrupts a consumer, advancing the clock while its settling (acks, releases, their retries) completes. */
const stop = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) =>
  Effect.gen(function* () {
    const stopping = yield* Effect.fork(Fiber.interrupt(fiber))
    yield* until(Effect.map(stopping.poll, (exit) => exit._tag === "Some"))
  })

const ensured = Effect.gen(function* () {
  const { consumer } = yield* services
  const sub = yield* subscription
  const fiber = yield* Effect.fork(consumer.ensure(user, { key, subscription: sub }))
  yield* TestClock.adjust("5 seconds")
  return yield* Fiber.join(fiber)
})

const requestsTo = (ledger: FakeZapier.Ledger, endpoint: string) =>
  ledger.requests.filter((r) => r.endpoint === endpoint).length

describe("TriggerInbox.ensure", () => {
  it.effect("creates the inbox once by key and waits until it is active", () =>
    Effect.gen(function* () {
      const { consumer, zapier } = yield* services
      const inbox = yield* ensured
      assert.strictEqual(inbox.status, "active")
      assert.strictEqual(inbox.key, key)
      const again = yield* consumer.ensure(user, { key, subscription: inbox.subscription })
      assert.strictEqual(again.id, inbox.id)
      assert.strictEqual((yield* zapier.inboxes).length, 1)
    }).pipe(Effect.provide(Zapier()))
  )

  it.effect("fails InboxKeyConflict for the same key with another subscription", () =>
    Effect.gen(function* () {
      const { consumer } = yield* services
      const inbox = yield* ensured
      const other = Domain.Subscription.make({ ...inbox.subscription, inputs: { channel: "#random" } })
      const error = yield* Effect.flip(consumer.ensure(user, { key, subscription: other }))
      assert.strictEqual(error._tag, "InboxKeyConflict")
    }).pipe(Effect.provide(Zapier()))
  )

  it.effect("fails InboxNotActive when initialization fails, or at the deadline", () =>
    Effect.gen(function* () {
      const { consumer, zapier } = yield* services
      const sub = yield* subscription
      yield* zapier.setInboxSettings({ activation: "10 minutes" })
      const fiber = yield* Effect.fork(
        Effect.flip(consumer.ensure(user, { key, subscription: sub }, { timeout: "30 seconds" }))
      )
      yield* TestClock.adjust("1 minute")
      const timedOut = yield* Fiber.join(fiber)
      assert.strictEqual(timedOut._tag, "InboxNotActive")
      assert.include(timedOut.message, "still initializing after waiting")
      const found = yield* zapier.findInbox(user, key)
      yield* zapier.failInboxInitialization(found.id)
      yield* TestClock.adjust("10 minutes")
      const failed = yield* Effect.flip(consumer.ensure(user, { key, subscription: sub }))
      assert.strictEqual(failed._tag === "InboxNotActive" && failed.status, "initialization_failure")
    }).pipe(Effect.provide(Zapier()))
  )
})

describe("TriggerInbox.consume", () => {
  it.effect("handles every event once, with one lease and one ack per batch and no polling in between", () =>
    Effect.gen(function* () {
      const { consumer, zapier } = yield* services
      const inbox = yield* ensured
      const seen = yield* Ref.make<ReadonlyArray<unknown>>([])
      const fiber = yield* Effect.fork(
        consumer.consume(user, inbox.id, (payload) => Ref.update(seen, (all) => [...all, payload]), {
          batch: 10,
          leaseSeconds: 60
        })
      )
      yield* TestClock.adjust("1 second")
      yield* zapier.resetLedger
      yield* zapier.emitTriggerEvents(inbox.id, 30)
      yield* until(Effect.map(zapier.inboxCounts, (c) => c.acked === 30))
      const ledger = yield* zapier.ledger
      const leases = requestsTo(ledger, FakeZapier.Endpoint.lease)
      const acks = requestsTo(ledger, FakeZapier.Endpoint.ack)
      assert.strictEqual(acks, 3, "one ack per batch of 10")
      assert.isAtMost(leases, 4, "three full leases, at most one that found nothing")
      assert.isAtMost((leases + acks) / 30, 0.25)
      assert.strictEqual((yield* Ref.get(seen)).length, 30)
      // Idle for ten minutes: only the safety drain leases (every 5 minutes), plus its quarantine look-up.
      yield* zapier.resetLedger
      yield* TestClock.adjust("10 minutes")
      assert.isAtMost(requestsTo(yield* zapier.ledger, FakeZapier.Endpoint.lease), 2)
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.provide(Zapier()))
  )

  it.effect(
    "a failing handler's message is released and comes back; a payload that does not decode names its message",
    () =>
      Effect.gen(function* () {
        const { consumer, zapier } = yield* services
        const inbox = yield* ensured
        const attempts = new Map<string, number>()
        const failures: Array<string> = []
        const Payload = Schema.Struct({ text: Schema.String })
        const fiber = yield* Effect.fork(
          consumer.consume(
            user,
            inbox.id,
            (payload, message) =>
              Effect.suspend(() => {
                const n = (attempts.get(message.id) ?? 0) + 1
                attempts.set(message.id, n)
                return payload.text === "flaky" && n < 3 ? Effect.fail("flaky") : Effect.void
              }),
            {
              payload: Payload,
              onFailure: (failure) =>
                Effect.sync(() => {
                  failures.push(
                    typeof failure === "object" && failure !== null && "_tag" in failure
                      ? `${failure._tag}:${"messageId" in failure ? failure.messageId : ""}`
                      : String(failure)
                  )
                })
            }
          )
        )
        const [flaky] = yield* zapier.emitTriggerEvents(inbox.id, [{ text: "flaky" }])
        const [bad] = yield* zapier.emitTriggerEvents(inbox.id, [{ nope: 1 }])
        yield* until(Effect.map(zapier.inboxCounts, (c) => c.acked === 1))
        assert.strictEqual(attempts.get(flaky!), 3, "two failures (released), then handled and acked")
        assert.include(failures, `PayloadDecodeFailed:${bad}`)
        assert.isFalse(attempts.has(bad!), "the handler never sees a payload that does not decode")
        yield* Fiber.interrupt(fiber)
      }).pipe(Effect.provide(Zapier()))
  )

  it.effect("quarantined messages are reported, not hidden", () =>
    Effect.gen(function* () {
      const { consumer, zapier } = yield* services
      const inbox = yield* ensured
      const reported: Array<Domain.MessageId> = []
      const fiber = yield* Effect.fork(
        consumer.consume(user, inbox.id, () => Effect.fail("always"), {
          onQuarantined: (messages) => Effect.sync(() => reported.push(...messages.map((m) => m.id)))
        })
      )
      const [poison] = yield* zapier.emitTriggerEvents(inbox.id, 1)
      yield* until(
        Effect.sync(() => reported.length === 1),
        "10 seconds"
      )
      assert.deepStrictEqual(reported, [poison])
      const message = (yield* zapier.inboxMessages).find((m) => m.id === poison)!
      assert.strictEqual(message.status, "quarantined")
      assert.strictEqual(message.leaseCount, 5)
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.provide(Zapier()))
  )

  it.effect("interruption releases what is held: the messages are available again at once", () =>
    Effect.gen(function* () {
      const { consumer, zapier } = yield* services
      const inbox = yield* ensured
      const started = yield* Ref.make(0)
      const fiber = yield* Effect.fork(
        consumer.consume(
          user,
          inbox.id,
          () =>
            Effect.zipRight(
              Ref.update(started, (n) => n + 1),
              Effect.never
            ),
          {
            batch: 10,
            concurrency: 2,
            leaseSeconds: 600
          }
        )
      )
      yield* zapier.emitTriggerEvents(inbox.id, 5)
      yield* until(Effect.map(Ref.get(started), (n) => n === 2))
      yield* Fiber.interrupt(fiber)
      const messages = yield* zapier.inboxMessages
      assert.deepStrictEqual(
        messages.map((m) => m.status),
        ["available", "available", "available", "available", "available"],
        "released before the 10-minute lease lapsed"
      )
    }).pipe(Effect.provide(Zapier()))
  )

  it.effect("a paused inbox ends the stream with InboxPaused; an authentication pause carries a reconnect link", () =>
    Effect.gen(function* () {
      const { consumer, zapier } = yield* services
      const inbox = yield* ensured
      yield* zapier.pauseInbox(inbox.id, "authentication")
      const error = yield* Effect.flip(consumer.consume(user, inbox.id, () => Effect.void))
      if (error._tag !== "InboxPaused") return assert.fail(`expected InboxPaused, got ${error._tag}`)
      assert.isTrue(error.needsReconnect)
      assert.strictEqual(error.connection, inbox.subscription.connection)
      assert.strictEqual(error.link?.reconnect, inbox.subscription.connection)
      assert.isTrue(Errors.isZapierError(error))
    }).pipe(Effect.provide(TriggerInbox.layer.pipe(Layer.provideMerge(FakeZapier.layer(FakeZapier.sampleSeed)))))
  )
})

describe("TriggerInbox chaos", () => {
  it.effect(
    "faults on lease, ack and the event stream, a handler interrupted mid-run and a restart: every message ends acked, executions bounded",
    () =>
      Effect.gen(function* () {
        const { consumer, zapier } = yield* services
        const inbox = yield* ensured
        const executions = new Map<string, number>()
        const handler = (_: unknown, message: Domain.InboxMessage) =>
          Effect.gen(function* () {
            executions.set(message.id, (executions.get(message.id) ?? 0) + 1)
            yield* Effect.sleep("2 seconds")
          })
        const faults: ReadonlyArray<FakeZapier.FaultRule> = [
          {
            endpoint: FakeZapier.Endpoint.lease,
            skip: 1,
            times: 2,
            fault: FakeZapier.Fault.status(429, { retryAfter: "2 seconds" })
          },
          { endpoint: FakeZapier.Endpoint.lease, skip: 4, times: 2, fault: FakeZapier.Fault.status(503) },
          {
            endpoint: FakeZapier.Endpoint.ack,
            skip: 0,
            times: 2,
            fault: FakeZapier.Fault.status(500, { afterCommit: true })
          },
          {
            endpoint: FakeZapier.Endpoint.ack,
            skip: 3,
            times: 1,
            fault: FakeZapier.Fault.disconnect({ afterCommit: true })
          },
          {
            endpoint: FakeZapier.Endpoint.ack,
            skip: 5,
            times: 2,
            fault: FakeZapier.Fault.status(429, { retryAfter: "1 second" })
          },
          // An outage of the ack endpoint longer than the lease: those messages come back and run again.
          { endpoint: FakeZapier.Endpoint.ack, skip: 8, times: 14, fault: FakeZapier.Fault.status(503) },
          { endpoint: FakeZapier.Endpoint.events, skip: 0, times: 3, fault: FakeZapier.Fault.disconnect() }
        ]
        for (const rule of faults) yield* zapier.injectFault(rule)
        const options = { batch: 10, concurrency: 4, leaseSeconds: 30 }
        // First process: runs for a while, then is interrupted mid-handler (a "crash" with handlers in flight).
        yield* zapier.emitTriggerEvents(inbox.id, 60)
        const first = yield* Effect.fork(consumer.consume(user, inbox.id, handler, options))
        yield* TestClock.adjust("1100 millis")
        yield* stop(first)
        // The restarted process consumes the rest; more events arrive meanwhile.
        const second = yield* Effect.fork(consumer.consume(user, inbox.id, handler, options))
        yield* zapier.emitTriggerEvents(inbox.id, 40)
        yield* until(
          Effect.map(zapier.inboxMessages, (all) =>
            all.every((m) => m.status === "acked" || m.status === "quarantined")
          ),
          "500 millis",
          2000
        ).pipe(
          Effect.tapDefect(() =>
            Effect.flatMap(zapier.inboxMessages, (all) =>
              Effect.sync(() =>
                console.log(
                  "stuck:",
                  JSON.stringify(all.filter((m) => m.status !== "acked").map((m) => [m.status, m.leaseCount]))
                )
              )
            )
          )
        )
        yield* stop(second)
        const messages = yield* zapier.inboxMessages
        const counts = {
          emitted: messages.length,
          acked: messages.filter((m) => m.status === "acked").length,
          quarantined: messages.filter((m) => m.status === "quarantined").length,
          lost: messages.filter((m) => m.status !== "acked" && m.status !== "quarantined").length,
          maxExecutionsPerMessage: Math.max(...messages.map((m) => executions.get(m.id) ?? 0))
        }
        console.log("trigger inbox chaos (in memory):", JSON.stringify(counts))
        assert.strictEqual(counts.emitted, 100)
        assert.strictEqual(counts.lost, 0)
        assert.strictEqual(counts.acked + counts.quarantined, 100)
        assert.strictEqual(counts.quarantined, 0, "no message failed often enough to be quarantined")
        for (const m of messages) assert.isAtLeast(executions.get(m.id) ?? 0, 1, `message ${m.id} was handled`)
        // Interrupted mid-run (once) and an ack outage longer than the lease (once): at most three runs.
        assert.isAtLeast(counts.maxExecutionsPerMessage, 2, "the plan did make some messages run again")
        assert.isAtMost(counts.maxExecutionsPerMessage, 3)
      }).pipe(Effect.provide(Zapier())),
    60_000
  )
})

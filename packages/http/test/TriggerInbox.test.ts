/**
 * The live TriggerInboxes and the core consumer against FakeZapierServer over real loopback HTTP (real clock):
 * the inbox flow with SSE wake-ups (latency from emit to handler, requests per message), both path prefixes, the
 * typed refusals (key conflict, paused with its reason, an expired lease), malformed event-stream frames, the
 * event stream closed at token expiry and reopened with a fresh token, notification hints through
 * `InboxHints.handler`, and a chaos plan over the wire.
 */
import * as Http from "node:http"
import { monitorEventLoopDelay } from "node:perf_hooks"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { assert, describe, it } from "@effect/vitest"
import { Domain, TriggerInbox, TriggerInboxes } from "@effect-zapier/core"
import { FakeZapier, FakeZapierServer, PartnerKey } from "@effect-zapier/testing"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Stream from "effect/Stream"
import { InboxHints, ZapierHttp } from "../src/index.js"

const { sample } = FakeZapier
const user = sample.user
const key = await Effect.runPromise(PartnerKey.generate({ alg: "ES256", kid: "inbox-key" }))
const seed = PartnerKey.register(FakeZapier.sampleSeed, key)

interface StackOptions {
  readonly server?: Omit<FakeZapierServer.Options, "seed"> | undefined
  readonly client?: Partial<ZapierHttp.Options> | undefined
}

/** FakeZapierServer, the live layers over undici, the consumer (with in-process hints). */
const stack = (options: StackOptions = {}) => {
  const Server = FakeZapierServer.layer({ seed, ...options.server })
  const Client = Layer.unwrapEffect(
    Effect.map(FakeZapierServer.FakeZapierServer, (server) =>
      ZapierHttp.layer({ ...FakeZapierServer.clientOptions(server, key), rateLimit: false, ...options.client })
    )
  )
  return TriggerInbox.layer.pipe(
    Layer.provideMerge(Client),
    Layer.provideMerge(TriggerInbox.layerHints),
    Layer.provide(NodeHttpClient.layerUndici),
    Layer.provideMerge(Server),
    Layer.provide(Logger.remove(Logger.defaultLogger))
  )
}

const services = Effect.all({
  consumer: TriggerInbox.TriggerInbox,
  inboxes: TriggerInboxes.TriggerInboxes,
  zapier: FakeZapier.FakeZapier
})

const inboxKey = Domain.InboxKey.make("new-messages-general")

const activeInbox = (notificationUrl?: string) =>
  Effect.gen(function* () {
    const { consumer, zapier } = yield* services
    yield* zapier.setInboxSettings({ activation: "100 millis" })
    const connection = yield* zapier.addConnection(user, sample.slack)
    return yield* consumer.ensure(user, {
      key: inboxKey,
      subscription: Domain.Subscription.make({
        app: sample.slack,
        action: sample.newChannelMessage,
        inputs: { channel: "#general" },
        connection: connection.id
      }),
      ...(notificationUrl !== undefined ? { notificationUrl } : {})
    })
  })

/** Waits (real time, polling the model) until `done` holds, failing after `timeout`. */
const waitFor = (done: Effect.Effect<boolean>, timeout: Duration.DurationInput = "20 seconds") =>
  Effect.gen(function* () {
    while (!(yield* done)) yield* Effect.sleep("20 millis")
  }).pipe(Effect.timeoutFail({ duration: timeout, onTimeout: () => new Error("timed out waiting") }), Effect.orDie)

const count = (ledger: FakeZapier.Ledger, endpoint: string) =>
  ledger.requests.filter((r) => r.endpoint === endpoint).length

/** The consumer has started: the server has seen its first lease (and, with `events`, its event stream). */
const consumerStarted = (zapier: FakeZapier.Control, options: { readonly events: boolean }) =>
  waitFor(
    Effect.map(
      zapier.ledger,
      (ledger) =>
        count(ledger, FakeZapier.Endpoint.lease) >= 1 &&
        (!options.events || count(ledger, FakeZapier.Endpoint.events) >= 1)
    )
  )

const p95 = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.95) - 1)] ?? 0
}

describe("Trigger Inbox over loopback HTTP", () => {
  it.live("emit → handler through SSE wake-ups, one lease and one ack per batch", () =>
    Effect.gen(function* () {
      const { consumer, zapier } = yield* services
      const inbox = yield* activeInbox()
      assert.strictEqual(inbox.status, "active")
      const lags: Array<number> = []
      const fiber = yield* Effect.fork(
        consumer.consume(
          user,
          inbox.id,
          (payload: { readonly sentAt: number }) => Effect.sync(() => lags.push(Date.now() - payload.sentAt)),
          { batch: 10, leaseSeconds: 60 }
        )
      )
      // Waits until the consumer has opened its event stream and made its first (empty) lease, so the ledger
      // counts only what the messages cost.
      yield* consumerStarted(zapier, { events: true })
      yield* zapier.resetLedger
      // How late this process's event loop ran meanwhile (the fake server runs in it too): on a loaded machine
      // that lateness, not the library, is what delays a wake-up, so it is added to the latency bound.
      const loopDelay = monitorEventLoopDelay({ resolution: 10 })
      loopDelay.enable()
      // Singles, 200 ms apart: each one is picked up by a wake-up, not by polling.
      for (let i = 0; i < 10; i++) {
        yield* zapier.emitTriggerEvents(inbox.id, [{ sentAt: Date.now() }])
        yield* Effect.sleep("200 millis")
      }
      yield* waitFor(Effect.map(zapier.inboxCounts, (c) => c.acked === 10))
      loopDelay.disable()
      // Then a burst of 100.
      yield* zapier.emitTriggerEvents(
        inbox.id,
        Array.from({ length: 100 }, () => ({ sentAt: Date.now() }))
      )
      yield* waitFor(Effect.map(zapier.inboxCounts, (c) => c.acked === 110))
      const ledger = yield* zapier.ledger
      const leases = count(ledger, FakeZapier.Endpoint.lease)
      const acks = count(ledger, FakeZapier.Endpoint.ack)
      console.log(
        `trigger inbox over loopback: emit→handler p95 ${p95(lags.slice(0, 10))} ms for single events, ${p95(lags)} ms with a burst of 100; ${leases} leases, ${acks} acks for ${lags.length} messages`
      )
      assert.strictEqual(lags.length, 110)
      // Within a second (the safety drain is 5 minutes away, so only a wake-up can be that quick), plus twice the
      // worst event-loop lateness seen while the singles ran (an event crosses the loop on the server's side and
      // on the client's).
      const lateMillis = loopDelay.max / 1e6
      assert.isBelow(
        p95(lags.slice(0, 10)),
        1000 + 2 * lateMillis,
        `a single event reaches its handler within a second (event loop up to ${lateMillis.toFixed(0)} ms late)`
      )
      assert.isAtMost(acks, 10 + 10 + 2, "the singles one ack each, the burst about one per batch of 10")
      assert.isAtMost(leases, 10 + 11 + 2)
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.provide(stack()))
  )

  it.live("the OpenAPI file's path prefix works the same", () =>
    Effect.gen(function* () {
      const { consumer, zapier } = yield* services
      const inbox = yield* activeInbox()
      const fiber = yield* Effect.fork(consumer.consume(user, inbox.id, () => Effect.void))
      yield* zapier.emitTriggerEvents(inbox.id, 3)
      yield* waitFor(Effect.map(zapier.inboxCounts, (c) => c.acked === 3))
      const ledger = yield* zapier.ledger
      assert.isTrue(ledger.requests.some((r) => r.path.startsWith("/trigger-inbox/v1/inboxes")))
      assert.isFalse(ledger.requests.some((r) => r.path.startsWith("/trigger-inbox/api/v1/")))
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.provide(stack({ client: { triggerInboxPath: "/trigger-inbox/v1" } })))
  )

  it.live("typed refusals: key conflict, paused with its reason and connection, an expired lease", () =>
    Effect.gen(function* () {
      const { inboxes, zapier } = yield* services
      const inbox = yield* activeInbox()
      const conflict = yield* Effect.flip(
        inboxes.ensure(user, {
          key: inboxKey,
          subscription: Domain.Subscription.make({ ...inbox.subscription, inputs: { channel: "#random" } })
        })
      )
      assert.strictEqual(conflict._tag, "InboxKeyConflict")
      yield* zapier.emitTriggerEvents(inbox.id, 1)
      const lease = yield* inboxes.lease(user, inbox.id, { leaseSeconds: 1, limit: 5 })
      assert.strictEqual(lease.messages.length, 1)
      yield* Effect.sleep("1200 millis")
      const expired = yield* Effect.flip(inboxes.ack(user, inbox.id, lease.leaseId!, [lease.messages[0]!.id]))
      assert.strictEqual(expired._tag, "LeaseExpired")
      // The lapsed message came back; leasing it again counts a second lease.
      const again = yield* inboxes.lease(user, inbox.id, { leaseSeconds: 30 })
      assert.strictEqual(again.messages[0]?.leaseCount, 2)
      yield* inboxes.ack(user, inbox.id, again.leaseId!)
      yield* zapier.pauseInbox(inbox.id, "authentication")
      const paused = yield* Effect.flip(inboxes.lease(user, inbox.id))
      if (paused._tag !== "InboxPaused") return assert.fail(`expected InboxPaused, got ${paused._tag}`)
      assert.strictEqual(paused.reason, "authentication")
      assert.isTrue(paused.needsReconnect)
      assert.strictEqual(paused.connection, inbox.subscription.connection)
      assert.strictEqual(paused.app, sample.slack)
    }).pipe(Effect.provide(stack()))
  )

  it.live("malformed event-stream frames are skipped; keep-alives and data frames come through", () =>
    Effect.gen(function* () {
      const { inboxes, zapier } = yield* services
      const inbox = yield* activeInbox()
      yield* zapier.injectFault({
        endpoint: FakeZapier.Endpoint.events,
        fault: FakeZapier.Fault.respond(
          `garbage without a colon\n\n: keep-alive\n\nevent: ping\nid: 3\n\ndata: ${"x".repeat(200_000)}\n\ndata: {}\n\n`,
          { contentType: "text/event-stream" }
        )
      })
      const events = yield* Stream.runCollect(inboxes.events(user, inbox.id))
      assert.deepStrictEqual(
        Chunk.toReadonlyArray(events).map((e) => e._tag),
        ["KeepAlive", "MessagesAvailable"]
      )
    }).pipe(Effect.provide(stack()))
  )

  it.live("the server closes the event stream when the token expires; the consumer reopens it with a fresh one", () =>
    Effect.gen(function* () {
      const { consumer, zapier } = yield* services
      const inbox = yield* activeInbox()
      const fiber = yield* Effect.fork(
        consumer.consume(user, inbox.id, () => Effect.void, { drainEvery: "10 minutes" })
      )
      // Waits for the reopening itself (the token lives 2 s); the guard only catches a hang.
      yield* waitFor(
        Effect.map(
          zapier.ledger,
          (ledger) => count(ledger, FakeZapier.Endpoint.events) >= 2 && ledger.exchanges.length >= 2
        )
      )
      const exchanges = (yield* zapier.ledger).exchanges.length
      const opened = count(yield* zapier.ledger, FakeZapier.Endpoint.events)
      assert.isAtLeast(opened, 2, "reopened after the 2 s token expired")
      assert.isAtLeast(exchanges, 2, "with a fresh token")
      yield* zapier.emitTriggerEvents(inbox.id, 2)
      yield* waitFor(Effect.map(zapier.inboxCounts, (c) => c.acked === 2))
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.provide(stack({ server: { accessTokenTtl: "2 seconds" } })))
  )

  it.live("notification hints wake the consumer through InboxHints.handler (no event stream, no drain)", () =>
    Effect.gen(function* () {
      const { consumer, zapier } = yield* services
      // The partner's own server, with the hint route (and the same in-process hints as the consumer).
      const partner = yield* Layer.build(
        HttpServer.serve(HttpRouter.empty.pipe(HttpRouter.post("/zapier/inbox-hints", InboxHints.handler()))).pipe(
          Layer.provideMerge(NodeHttpServer.layer(() => Http.createServer(), { host: "127.0.0.1", port: 0 }))
        )
      )
      const address = Context.get(partner, HttpServer.HttpServer).address
      const port = address._tag === "TcpAddress" ? address.port : 0
      const inbox = yield* activeInbox(`http://127.0.0.1:${port}/zapier/inbox-hints`)
      const fiber = yield* Effect.fork(
        consumer.consume(user, inbox.id, () => Effect.void, { events: false, drainEvery: "10 minutes" })
      )
      // After the consumer's first lease, only a hint can bring the messages in (no stream, drain in 10 minutes).
      yield* consumerStarted(zapier, { events: false })
      yield* zapier.emitTriggerEvents(inbox.id, 4)
      yield* waitFor(Effect.map(zapier.inboxCounts, (c) => c.acked === 4))
      const notifications = yield* zapier.notifications
      assert.isAtLeast(notifications.length, 1)
      assert.strictEqual(notifications[0]!.status, 200)
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.scoped, Effect.provide(stack()))
  )
})

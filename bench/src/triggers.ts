/**
 * Embedded triggers (the `triggers` key): the Trigger Inbox consumer against FakeZapierServer over loopback HTTP,
 * in this process (real clock, the live client over undici).
 *
 * - `emitToHandlerP95Ms`: single events emitted ~150 ms apart, from the emit to the start of their handler, woken by
 *   the inbox's Server-Sent Events (no polling of the lease endpoint in between);
 * - `messagesPerSec`: a burst handled to its last ack (batch 10, 10 handlers at once);
 * - `requestsPerMessage`: Trigger Inbox requests (leases, acks, releases) per message of a burst, at batch 1 and 10;
 * - `chaos`: `FakeZapier.inboxChaosPlan` over the wire, the plan of the http package's chaos test (429 and 503 on
 *   lease and ack, ack answers lost after commit, dropped event streams; two consumers interrupted with handlers
 *   in flight, then a restarted one): every message acked or quarantined, the most handler executions of one
 *   message;
 * - `sdkDrainWatch`: the same singles and burst with Zapier's SDK pattern (on each event, lease until a lease
 *   comes back empty, then ack), for comparison.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Domain, TriggerInbox, TriggerInboxes } from "@effect-zapier/core"
import { ZapierHttp } from "@effect-zapier/http"
import { FakeZapier, FakeZapierServer, PartnerKey } from "@effect-zapier/testing"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Stream from "effect/Stream"

/** The scenario's sizes. */
export interface Settings {
  readonly singles: number
  readonly burst: number
  readonly chaos: number
}

/** The `triggers` key of the results. */
export interface Result {
  readonly emitToHandlerP95Ms: number
  readonly messagesPerSec: number
  readonly requestsPerMessage: { readonly batch1: number; readonly batch10: number }
  readonly chaos: {
    readonly emitted: number
    readonly acked: number
    readonly quarantined: number
    readonly lost: number
    readonly maxExecutionsPerMessage: number
  }
  readonly sdkDrainWatch: {
    readonly emitToHandlerP95Ms: number
    readonly requestsPerMessage: { readonly singles: number; readonly batch10: number }
  }
  readonly library: { readonly requestsPerMessageSingles: number }
}

const { sample } = FakeZapier
const user = sample.user
const settleEndpoints = [FakeZapier.Endpoint.lease, FakeZapier.Endpoint.ack, FakeZapier.Endpoint.release]

const p95 = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * 0.95) - 1))] ?? 0
}

const stack = Effect.map(PartnerKey.generate({ alg: "ES256" }), (key) => {
  const Server = FakeZapierServer.layer({ seed: PartnerKey.register(FakeZapier.sampleSeed, key) })
  const Client = Layer.unwrapEffect(
    Effect.map(FakeZapierServer.FakeZapierServer, (server) =>
      ZapierHttp.layer({ ...FakeZapierServer.clientOptions(server, key), rateLimit: false })
    )
  )
  return TriggerInbox.layer.pipe(
    Layer.provideMerge(Client),
    Layer.provide(NodeHttpClient.layerUndici),
    Layer.provideMerge(Server),
    Layer.provide(Logger.remove(Logger.defaultLogger))
  )
})

const waitFor = (done: Effect.Effect<boolean>) =>
  Effect.gen(function* () {
    while (!(yield* done)) yield* Effect.sleep("10 millis")
  }).pipe(Effect.timeoutFail({ duration: "120 seconds", onTimeout: () => "the triggers scenario timed out" }))

/** A fresh active inbox for one scenario (its own key). */
const inboxFor = (key: string) =>
  Effect.gen(function* () {
    const consumer = yield* TriggerInbox.TriggerInbox
    const zapier = yield* FakeZapier.FakeZapier
    yield* zapier.setInboxSettings({ activation: "50 millis" })
    const connection = yield* zapier.addConnection(user, sample.slack)
    return yield* consumer.ensure(user, {
      key: Domain.InboxKey.make(key),
      subscription: Domain.Subscription.make({
        app: sample.slack,
        action: sample.newChannelMessage,
        inputs: { channel: "#general" },
        connection: connection.id
      })
    })
  })

const settleRequests = Effect.map(FakeZapier.FakeZapier, (zapier) =>
  Effect.map(zapier.ledger, (l) => l.requests.filter((r) => settleEndpoints.includes(r.endpoint as never)).length)
)

type Handler = (payload: { readonly sentAt: number }) => Effect.Effect<void>
/** Runs a consumer (the library's, or the SDK pattern) while `body` runs. */
type Consumer = (
  inbox: Domain.InboxId,
  handler: Handler,
  batch: number
) => Effect.Effect<never, unknown, TriggerInbox.TriggerInbox | TriggerInboxes.TriggerInboxes>

const library: Consumer = (inbox, handler, batch) =>
  Effect.flatMap(TriggerInbox.TriggerInbox, (c) =>
    c.consume(user, inbox, handler, { batch, concurrency: batch, leaseSeconds: 60 })
  )

/** Zapier's SDK pattern: on each wake-up (and once at start), lease until a lease comes back empty, ack each batch. */
const sdkPattern: Consumer = (inbox, handler, batch) =>
  Effect.gen(function* () {
    const inboxes = yield* TriggerInboxes.TriggerInboxes
    const drain = Effect.gen(function* () {
      while (true) {
        const lease = yield* inboxes.lease(user, inbox, { limit: batch, leaseSeconds: 60 })
        if (lease.leaseId === undefined || lease.messages.length === 0) return
        yield* Effect.forEach(lease.messages, (m) => handler(m.payload as { readonly sentAt: number }), {
          concurrency: batch,
          discard: true
        })
        yield* inboxes.ack(user, inbox, lease.leaseId)
      }
    })
    yield* drain
    yield* inboxes.events(user, inbox).pipe(
      Stream.filter((e) => e._tag === "MessagesAvailable"),
      Stream.runForEach(() => drain)
    )
    return yield* Effect.never
  })

/** Singles ~150 ms apart: emit → handler latencies, and settle requests per message. */
const singles = (consumer: Consumer, count: number, key: string) =>
  Effect.gen(function* () {
    const zapier = yield* FakeZapier.FakeZapier
    const inbox = yield* inboxFor(key)
    const lags: Array<number> = []
    const fiber = yield* Effect.fork(consumer(inbox.id, (p) => Effect.sync(() => lags.push(Date.now() - p.sentAt)), 10))
    yield* Effect.sleep("300 millis")
    const before = yield* yield* settleRequests
    for (let i = 0; i < count; i++) {
      yield* zapier.emitTriggerEvents(inbox.id, [{ sentAt: Date.now() }])
      yield* Effect.sleep("150 millis")
    }
    yield* waitFor(Effect.sync(() => lags.length >= count))
    yield* Effect.sleep("200 millis")
    const requests = (yield* yield* settleRequests) - before
    yield* Fiber.interrupt(fiber)
    return { p95: p95(lags), requestsPerMessage: requests / count }
  })

/** A burst: messages per second to the last ack, and settle requests per message. */
const burst = (consumer: Consumer, count: number, batch: number, key: string) =>
  Effect.gen(function* () {
    const zapier = yield* FakeZapier.FakeZapier
    const inbox = yield* inboxFor(key)
    let handled = 0
    const fiber = yield* Effect.fork(consumer(inbox.id, () => Effect.sync(() => void handled++), batch))
    yield* Effect.sleep("300 millis")
    const before = yield* yield* settleRequests
    const ackedBefore = (yield* zapier.inboxCounts).acked
    const start = performance.now()
    yield* zapier.emitTriggerEvents(
      inbox.id,
      Array.from({ length: count }, () => ({ sentAt: Date.now() }))
    )
    yield* waitFor(Effect.map(zapier.inboxCounts, (c) => c.acked - ackedBefore >= count))
    const seconds = (performance.now() - start) / 1000
    yield* Effect.sleep("100 millis")
    const requests = (yield* yield* settleRequests) - before
    yield* Fiber.interrupt(fiber)
    return { messagesPerSec: count / seconds, requestsPerMessage: requests / count, handled }
  })

/** Waits until a handler of the inbox runs (started, not finished). */
const handlerInFlight = (started: Map<string, number>, finished: Map<string, number>) =>
  waitFor(Effect.sync(() => [...started].some(([id, n]) => n > (finished.get(id) ?? 0))))

/**
 * `FakeZapier.inboxChaosPlan` over the wire, as the chaos test of the http package runs it, except that its first
 * consumer (a child process killed with SIGKILL there) is a consumer scope interrupted mid-handler here, like the
 * second: two interruptions with handlers in flight, then a restarted consumer to the end.
 */
const chaos = (count: number) =>
  Effect.gen(function* () {
    const zapier = yield* FakeZapier.FakeZapier
    const consumer = yield* TriggerInbox.TriggerInbox
    const plan = FakeZapier.inboxChaosPlan
    const inbox = yield* inboxFor("bench-chaos")
    const started = new Map<string, number>()
    const finished = new Map<string, number>()
    const handler = (_: unknown, m: Domain.InboxMessage) =>
      Effect.gen(function* () {
        started.set(m.id, (started.get(m.id) ?? 0) + 1)
        yield* Effect.sleep(plan.handlerMillis)
        finished.set(m.id, (finished.get(m.id) ?? 0) + 1)
      })
    for (const rule of plan.faults) yield* zapier.injectFault(rule)
    const first = Math.floor(count * plan.emittedFirst)
    yield* zapier.emitTriggerEvents(
      inbox.id,
      Array.from({ length: first }, (_, i) => ({ n: i }))
    )
    for (let interrupted = 0; interrupted < 2; interrupted++) {
      const scope = yield* Effect.fork(consumer.consume(user, inbox.id, handler, plan.consumer))
      yield* handlerInFlight(started, finished)
      yield* Fiber.interrupt(scope)
    }
    const last = yield* Effect.fork(consumer.consume(user, inbox.id, handler, plan.consumer))
    yield* zapier.emitTriggerEvents(
      inbox.id,
      Array.from({ length: count - first }, (_, i) => ({ n: first + i }))
    )
    yield* waitFor(
      Effect.map(zapier.inboxMessages, (all) =>
        all.filter((m) => m.inbox === inbox.id).every((m) => m.status === "acked" || m.status === "quarantined")
      )
    )
    yield* Fiber.interrupt(last)
    yield* zapier.clearFaults
    const messages = (yield* zapier.inboxMessages).filter((m) => m.inbox === inbox.id)
    return {
      emitted: messages.length,
      acked: messages.filter((m) => m.status === "acked").length,
      quarantined: messages.filter((m) => m.status === "quarantined").length,
      lost: messages.filter((m) => m.status !== "acked" && m.status !== "quarantined").length,
      maxExecutionsPerMessage: Math.max(0, ...messages.map((m) => started.get(m.id) ?? 0))
    }
  })

/** Runs every part of the scenario. */
export const run = (settings: Settings): Effect.Effect<Result, unknown> =>
  Effect.gen(function* () {
    const single = yield* singles(library, settings.singles, "bench-singles")
    const sdkSingle = yield* singles(sdkPattern, settings.singles, "bench-sdk-singles")
    const batch10 = yield* burst(library, settings.burst, 10, "bench-burst-10")
    const batch1 = yield* burst(library, Math.max(10, Math.floor(settings.burst / 5)), 1, "bench-burst-1")
    const sdkBurst = yield* burst(sdkPattern, settings.burst, 10, "bench-sdk-burst")
    const chaosCounts = yield* chaos(settings.chaos)
    const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits
    return {
      emitToHandlerP95Ms: single.p95,
      messagesPerSec: round(batch10.messagesPerSec, 1),
      requestsPerMessage: { batch1: round(batch1.requestsPerMessage), batch10: round(batch10.requestsPerMessage) },
      chaos: chaosCounts,
      sdkDrainWatch: {
        emitToHandlerP95Ms: sdkSingle.p95,
        requestsPerMessage: {
          singles: round(sdkSingle.requestsPerMessage),
          batch10: round(sdkBurst.requestsPerMessage)
        }
      },
      library: { requestsPerMessageSingles: round(single.requestsPerMessage) }
    }
  }).pipe(Effect.scoped, Effect.provide(Layer.unwrapEffect(stack)))

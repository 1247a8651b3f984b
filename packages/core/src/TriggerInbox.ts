/**
 * The Trigger Inbox consumer: an inbox's messages as an Effect `Stream`, each acknowledged when its processing
 * succeeds and released when it fails (at-least-once: a message is done only once it is acknowledged; anything
 * else brings it back).
 *
 * - **Ensure** (`ensure`): creates the inbox (idempotent by key) and waits for `active` on a Schedule, up to a
 *   deadline.
 * - **Wake-ups instead of polling**: the inbox's Server-Sent Events (reconnected with backoff; each connection
 *   gets a fresh token; a connection silent for `idleTimeout` is replaced), the `notification_url` hints (see
 *   {@link Hints}), and a safety drain every `drainEvery` (5 minutes). Between wake-ups no request is made.
 * - **Leases sized to the handler**: each message must be handled before its lease's deadline (the lease's end
 *   minus a margin); a handler still running then is interrupted, and messages of the lease not started by then
 *   are released, so they come back at once instead of when the lease lapses. Zapier has no lease extension: pick
 *   `leaseSeconds` above the handler's longest run.
 * - **One ack per batch**: the outcomes of a lease's messages are sent together once all are settled (one ack,
 *   and one release if any failed), so a batch of 10 costs one lease and one ack.
 * - **Interruption** releases every message held and not acknowledged. **Transient errors** (429, 5xx, a lost
 *   answer) back off and retry; a message is never dropped: at worst its lease lapses and it is delivered again.
 * - **Quarantined messages** (leased too often without an ack) are looked up at each safety drain and reported
 *   (`onQuarantined`, a warning log and the `zapier.inbox.quarantined` metric), never hidden.
 *
 * @example
 * ```ts
 * import { Domain, TriggerInbox } from "@effect-zapier/core"
 * import { Effect, Schema } from "effect"
 *
 * const user = Domain.EndUser.make({ userId: "u-42", tenantId: "acme" })
 * const subscription = Domain.Subscription.make({
 *   app: Domain.AppId.make("slack"),
 *   action: Domain.ActionKey.make("new_channel_message"),
 *   inputs: { channel: "#general" },
 *   connection: Domain.ConnectionId.make("12345")
 * })
 *
 * const program = Effect.gen(function* () {
 *   const consumer = yield* TriggerInbox.TriggerInbox
 *   const inbox = yield* consumer.ensure(user, { key: Domain.InboxKey.make("new-messages"), subscription })
 *   yield* consumer.consume(user, inbox.id, (payload) => Effect.log("new message", payload), {
 *     payload: Schema.Struct({ text: Schema.String }),
 *     batch: 10,
 *     concurrency: 4,
 *     leaseSeconds: 60
 *   })
 * })
 * ```
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Connections } from "./Connections.js"
import type { EndUser, Inbox, InboxId, InboxMessage, Lease, LeaseId, MessageId } from "./Domain.js"
import {
  type InboxKeyConflict,
  InboxNotActive,
  InboxPaused,
  LeaseExpired,
  PayloadDecodeFailed,
  type RequestError
} from "./Errors.js"
import * as settle from "./internal/inboxSettle.js"
import * as Metrics from "./Metrics.js"
import type { EnsureInbox, LeaseOptions } from "./TriggerInboxes.js"
import { TriggerInboxes } from "./TriggerInboxes.js"

// ---------------------------------------------------------------------------------------------------------------
// Hints (notification_url)
// ---------------------------------------------------------------------------------------------------------------

/** @since 0.1.0 */
export interface HintsService {
  /** Wakes the consumers of this inbox (called by the notification handler). */
  readonly notify: (inbox: InboxId) => Effect.Effect<void>
  /** The inbox ids notified from now on. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<InboxId>, never, Scope.Scope>
}

/**
 * Where `notification_url` wake-up hints go: the HTTP handler that receives Zapier's POST calls `notify`, and the
 * consumers of that inbox in this process look for messages at once. A hint is never data: it only wakes.
 * @since 0.1.0
 * @category tags
 */
export class Hints extends Context.Tag("@effect-zapier/core/TriggerInbox/Hints")<Hints, HintsService>() {}

/**
 * In-process hints (a PubSub): for one process, or behind a fleet's own fan-out.
 * @since 0.1.0
 * @category layers
 */
export const layerHints: Layer.Layer<Hints> = Layer.effect(
  Hints,
  Effect.map(PubSub.sliding<InboxId>(1024), (pubsub) =>
    Hints.of({ notify: (inbox) => Effect.asVoid(PubSub.publish(pubsub, inbox)), subscribe: PubSub.subscribe(pubsub) })
  )
)

// ---------------------------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------------------------

/**
 * Options of `ensure`.
 * @since 0.1.0
 */
export interface EnsureOptions {
  /** How long to wait for the inbox to become `active`; default 60 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /** The delays between status checks; default 250 ms, ×1.5, capped at 5 s. */
  readonly schedule?: Schedule.Schedule<unknown, unknown> | undefined
}

/**
 * Options of `stream`.
 * @since 0.1.0
 */
export interface StreamOptions<A = unknown, I = unknown> {
  /** Messages per lease (1–100); default 10. */
  readonly batch?: number | undefined
  /** How long a lease holds its messages (1–3600 s); default 60. Pick it above the handler's longest run. */
  readonly leaseSeconds?: number | undefined
  /** Decodes each payload; a payload that does not decode is released and fails with `PayloadDecodeFailed`. */
  readonly payload?: Schema.Schema<A, I> | undefined
  /** Wake up on the inbox's Server-Sent Events; default true. */
  readonly events?: boolean | undefined
  /** The safety drain (and quarantine check) period; default 5 minutes. */
  readonly drainEvery?: Duration.DurationInput | undefined
  /** An event stream silent for this long is reconnected; default 2 minutes. */
  readonly idleTimeout?: Duration.DurationInput | undefined
  /** Delays between event-stream reconnections; default 0.5 s, 1 s, 2 s, then every 5 s. */
  readonly reconnect?: Schedule.Schedule<unknown, unknown> | undefined
  /** Called with newly quarantined messages (each once per stream); a warning is logged either way. */
  readonly onQuarantined?: ((messages: ReadonlyArray<InboxMessage>) => Effect.Effect<void>) | undefined
}

/**
 * Options of `consume`.
 * @since 0.1.0
 */
export interface ConsumeOptions<A = unknown, I = unknown> extends StreamOptions<A, I> {
  /** Handlers running at once; default the batch size. */
  readonly concurrency?: number | undefined
  /** Called when a handler fails (the message was released); a warning is logged either way. */
  readonly onFailure?: ((failure: unknown, message: InboxMessage) => Effect.Effect<void>) | undefined
}

/**
 * One delivered message. `process` runs the handler on the (decoded) payload before `deadline`, then the
 * message is acknowledged if the handler succeeded and released if it failed, was interrupted or ran out of time
 * (`LeaseExpired`).
 * @since 0.1.0
 */
export interface Received<A> {
  readonly message: InboxMessage
  readonly lease: LeaseId
  /** The handler must be done by then (the lease's end minus a margin). */
  readonly deadline: DateTime.Utc
  readonly process: <B, E, R>(
    handler: (payload: A, message: InboxMessage) => Effect.Effect<B, E, R>
  ) => Effect.Effect<B, E | PayloadDecodeFailed | LeaseExpired, R>
}

/**
 * What ends a stream: a request that failed for good, or an inbox that cannot be leased from.
 * @since 0.1.0
 */
export type StreamError = RequestError | InboxPaused | InboxNotActive

/** @since 0.1.0 */
export interface Service {
  /** Ensures the inbox (idempotent by key) and waits until it is `active`. */
  readonly ensure: (
    user: EndUser,
    request: EnsureInbox,
    options?: EnsureOptions
  ) => Effect.Effect<Inbox, RequestError | InboxKeyConflict | InboxPaused | InboxNotActive>
  /** The inbox's messages, for as long as the stream is consumed; closing it releases what it holds. */
  readonly stream: <A = unknown, I = unknown>(
    user: EndUser,
    inbox: InboxId,
    options?: StreamOptions<A, I>
  ) => Stream.Stream<Received<A>, StreamError>
  /**
   * Runs `handler` on every message, `concurrency` at a time, until interrupted or the inbox cannot be leased
   * from (paused, deleted, …). A failing handler does not stop it: the message is released (reported to
   * `onFailure`) and comes back, until Zapier quarantines it.
   */
  readonly consume: <A = unknown, I = unknown, E = never, R = never>(
    user: EndUser,
    inbox: InboxId,
    handler: (payload: A, message: InboxMessage) => Effect.Effect<unknown, E, R>,
    options?: ConsumeOptions<A, I>
  ) => Effect.Effect<never, StreamError, R>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class TriggerInbox extends Context.Tag("@effect-zapier/core/TriggerInbox")<TriggerInbox, Service>() {}

const defaultEnsureSchedule = Schedule.exponential(Duration.millis(250), 1.5).pipe(
  Schedule.union(Schedule.spaced(Duration.seconds(5)))
)
const defaultReconnect = Schedule.union(
  Schedule.fromDelays(Duration.millis(500), Duration.seconds(1), Duration.seconds(2)),
  Schedule.spaced(Duration.seconds(5))
)

const isTransient = (e: { readonly _tag: string }) => e._tag === "RateLimited" || e._tag === "ZapierUnavailable"

/** The margin kept between a handler's deadline and its lease's end (for the ack to arrive in time). */
const marginOf = (leaseSeconds: number) => Duration.millis(Math.max(1000, Math.min(10_000, leaseSeconds * 200)))

/**
 * Builds the consumer over `TriggerInboxes` (yielded once, here). When the context also holds `Connections`, an
 * `InboxPaused` for an authentication reason carries a reconnect link; when it holds {@link Hints}, hints wake
 * the consumers.
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.gen(function* () {
  const inboxes = yield* TriggerInboxes
  const connections = yield* Effect.serviceOption(Connections)
  const hints = yield* Effect.serviceOption(Hints)

  /** Adds a reconnect link to an authentication pause when Connections is available (best effort). */
  const withLink = (user: EndUser, paused: InboxPaused): Effect.Effect<InboxPaused> =>
    Option.isNone(connections) || !paused.needsReconnect || paused.app === undefined || paused.link !== undefined
      ? Effect.succeed(paused)
      : connections.value.connectLink(user, paused.app, paused.connection ? { reconnect: paused.connection } : {}).pipe(
          Effect.map((link) => new InboxPaused({ ...paused, link })),
          Effect.orElseSucceed(() => paused)
        )

  const ensure = Effect.fn("TriggerInbox.ensure")(function* (
    user: EndUser,
    request: EnsureInbox,
    options?: EnsureOptions
  ) {
    yield* Effect.annotateCurrentSpan({ "zapier.inbox_key": request.key })
    const timeout = Duration.decode(options?.timeout ?? Duration.seconds(60))
    const started = yield* Clock.currentTimeMillis
    let inbox = yield* inboxes.ensure(user, request)
    yield* Effect.annotateCurrentSpan({ "zapier.inbox": inbox.id })
    const driver = yield* Schedule.driver(options?.schedule ?? defaultEnsureSchedule)
    while (true) {
      switch (inbox.status) {
        case "active":
          return inbox
        case "paused":
          return yield* Effect.flip(
            withLink(
              user,
              new InboxPaused({
                inbox: inbox.id,
                reason: inbox.pausedReason ?? "unknown",
                app: inbox.subscription.app,
                connection: inbox.subscription.connection
              })
            )
          )
        case "initialization_failure":
        case "deleting":
          return yield* new InboxNotActive({ inbox: inbox.id, status: inbox.status })
      }
      const waited = (yield* Clock.currentTimeMillis) - started
      if (waited >= Duration.toMillis(timeout)) {
        return yield* new InboxNotActive({ inbox: inbox.id, status: inbox.status, waited: Duration.millis(waited) })
      }
      const next = yield* Effect.either(driver.next(undefined))
      if (next._tag === "Left") {
        return yield* new InboxNotActive({ inbox: inbox.id, status: inbox.status, waited: Duration.millis(waited) })
      }
      inbox = yield* inboxes.get(user, inbox.id)
    }
  })

  const stream = <A = unknown, I = unknown>(
    user: EndUser,
    inbox: InboxId,
    options?: StreamOptions<A, I>
  ): Stream.Stream<Received<A>, StreamError> =>
    Stream.unwrapScoped(
      Effect.gen(function* () {
        const batch = Math.min(100, Math.max(1, Math.round(options?.batch ?? 10)))
        const leaseSeconds = Math.min(3600, Math.max(1, Math.round(options?.leaseSeconds ?? 60)))
        const leaseOptions: LeaseOptions = { limit: batch, leaseSeconds }
        const margin = marginOf(leaseSeconds)
        const drainEvery = Duration.decode(options?.drainEvery ?? Duration.minutes(5))
        const wake = yield* Queue.sliding<Metrics.WakeupSource>(1)
        const signal = (source: Metrics.WakeupSource) =>
          Effect.zipRight(Metric.increment(Metrics.inboxWakeupsFrom(source)), Queue.offer(wake, source))
        const tracker = yield* settle.makeTracker(inboxes, user, inbox)
        yield* Effect.addFinalizer(() => tracker.releaseAll)

        if (options?.events ?? true) {
          yield* Effect.forkScoped(
            eventsLoop(
              () => inboxes.events(user, inbox),
              signal,
              Duration.decode(options?.idleTimeout ?? Duration.minutes(2)),
              options?.reconnect ?? defaultReconnect
            )
          )
        }
        if (Option.isSome(hints)) {
          const notified = yield* hints.value.subscribe
          yield* Effect.forkScoped(
            Effect.forever(Effect.flatMap(Queue.take(notified), (id) => (id === inbox ? signal("hint") : Effect.void)))
          )
        }
        const quarantine = quarantineReporter(inboxes, user, inbox, options?.onQuarantined)
        yield* Effect.forkScoped(
          Effect.forever(Effect.zipRight(Effect.sleep(drainEvery), Effect.zipRight(signal("drain"), quarantine)))
        )

        const leaseOnce: Effect.Effect<Lease, StreamError> = retryTransient(
          inboxes.lease(user, inbox, leaseOptions),
          "lease"
        ).pipe(
          Effect.tap((lease) =>
            Metric.increment(Metrics.inboxLeasesWith(lease.messages.length > 0 ? "messages" : "empty"))
          ),
          Effect.catchTag("InboxPaused", (paused) => Effect.flip(withLink(user, paused)))
        )

        const decode = options?.payload ? Schema.decodeUnknown(options.payload) : undefined
        const toReceived = (lease: Lease, leaseId: LeaseId, deadline: DateTime.Utc) =>
          lease.messages.map(
            (message): Received<A> => ({
              message,
              lease: leaseId,
              deadline,
              process: (handler) => processOne(tracker, message, leaseId, deadline, decode, handler)
            })
          )

        let partial = false
        const pull: Effect.Effect<Chunk.Chunk<Received<A>>, StreamError> = Effect.gen(function* () {
          while (true) {
            // After a partial batch the inbox held nothing more: wait for news (an event, a hint, a reconnection
            // or the safety drain's timer).
            if (partial) yield* Queue.take(wake)
            yield* Queue.takeAll(wake)
            const lease = yield* leaseOnce
            partial = lease.messages.length < batch
            if (lease.leaseId === undefined || lease.messages.length === 0) {
              partial = true
              continue
            }
            const now = yield* DateTime.now
            const until = lease.leasedUntil ?? DateTime.addDuration(now, Duration.seconds(leaseSeconds))
            const deadline = DateTime.subtractDuration(until, margin)
            yield* tracker.open(lease.leaseId, lease.messages, deadline)
            return Chunk.fromIterable(toReceived(lease, lease.leaseId, deadline))
          }
        })
        return Stream.repeatEffectChunk(pull)
      })
    )

  const consume = <A = unknown, I = unknown, E = never, R = never>(
    user: EndUser,
    inbox: InboxId,
    handler: (payload: A, message: InboxMessage) => Effect.Effect<unknown, E, R>,
    options?: ConsumeOptions<A, I>
  ): Effect.Effect<never, StreamError, R> =>
    stream(user, inbox, options).pipe(
      Stream.mapEffect(
        (received) =>
          received.process(handler).pipe(
            Effect.catchAll((failure) =>
              Effect.zipRight(
                Effect.logWarning("A trigger message was not handled; it was released and will come back").pipe(
                  Effect.annotateLogs({
                    inbox,
                    message: received.message.id,
                    failure:
                      typeof failure === "object" && failure !== null && "_tag" in failure ? failure._tag : "error"
                  })
                ),
                options?.onFailure ? options.onFailure(failure, received.message) : Effect.void
              )
            ),
            Effect.withSpan("TriggerInbox.process", {
              attributes: { "zapier.inbox": inbox, "zapier.message": received.message.id }
            })
          ),
        { concurrency: options?.concurrency ?? options?.batch ?? 10, unordered: true }
      ),
      Stream.runDrain,
      Effect.zipRight(Effect.never),
      Effect.withSpan("TriggerInbox.consume", { attributes: { "zapier.inbox": inbox } })
    )

  return TriggerInbox.of({ ensure, stream, consume })
})

/**
 * The consumer as a layer.
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<TriggerInbox, never, TriggerInboxes> = Layer.effect(TriggerInbox, make)

// ---------------------------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------------------------

/** Retries 429s (after their hint) and unavailability (capped backoff) for ever: nothing is dropped. */
const retryTransient = <A, E extends { readonly _tag: string }>(
  effect: Effect.Effect<A, E>,
  what: string
): Effect.Effect<A, E> =>
  Effect.gen(function* () {
    const driver = yield* Schedule.driver(
      Schedule.exponential(Duration.millis(500), 2).pipe(
        Schedule.union(Schedule.spaced(Duration.seconds(30))),
        Schedule.jittered
      )
    )
    while (true) {
      const result = yield* Effect.either(effect)
      if (result._tag === "Right") return result.right
      const error = result.left
      if (!isTransient(error)) return yield* Effect.fail(error)
      yield* Effect.logDebug(`Trigger Inbox ${what} failed; retrying`).pipe(
        Effect.annotateLogs({ failure: error._tag })
      )
      const hint = "retryAfter" in error && Duration.isDuration(error.retryAfter) ? error.retryAfter : undefined
      if (hint !== undefined) yield* Effect.sleep(hint)
      else yield* Effect.orDie(driver.next(undefined))
    }
  })

/** Runs one handler under the lease's deadline and settles the message with the outcome. */
const processOne = <A, B, E, R>(
  tracker: settle.Tracker,
  message: InboxMessage,
  lease: LeaseId,
  deadline: DateTime.Utc,
  decode: ((u: unknown) => Effect.Effect<A, ParseResult.ParseError>) | undefined,
  handler: (payload: A, message: InboxMessage) => Effect.Effect<B, E, R>
): Effect.Effect<B, E | PayloadDecodeFailed | LeaseExpired, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function* () {
      const lapsed = () => new LeaseExpired({ inbox: message.inbox, lease, messages: [message.id] })
      if (!(yield* tracker.start(lease, message.id))) return yield* Effect.fail(lapsed())
      const now = yield* DateTime.now
      const left = DateTime.distance(now, deadline)
      if (left <= 0) {
        yield* tracker.settle(lease, message.id, "lapsed")
        return yield* Effect.fail(lapsed())
      }
      yield* Metric.update(Metrics.inboxLag, Duration.millis(Math.max(0, DateTime.distance(message.createdAt, now))))
      const payload =
        decode === undefined
          ? Exit.succeed(message.payload as A)
          : yield* Effect.exit(
              Effect.mapError(
                decode(message.payload),
                (e) =>
                  new PayloadDecodeFailed({
                    inbox: message.inbox,
                    messageId: message.id,
                    reason: settle.describeIssue(e)
                  })
              )
            )
      if (Exit.isFailure(payload)) {
        yield* tracker.settle(lease, message.id, "decode_failed")
        return yield* Effect.failCause(payload.cause)
      }
      const run = restore(handler(payload.value, message)).pipe(
        Effect.timeoutFail({ duration: Duration.millis(left), onTimeout: lapsed })
      )
      const exit = yield* Effect.exit(run)
      yield* tracker.settle(
        lease,
        message.id,
        Exit.isSuccess(exit)
          ? "acked"
          : Exit.isInterrupted(exit)
            ? "released"
            : exit.cause._tag === "Fail" && exit.cause.error instanceof LeaseExpired
              ? "lapsed"
              : "failed"
      )
      return yield* exit
    })
  )

/** Keeps the event stream open; each data frame signals, each (re)connection after a drop signals too. */
const eventsLoop = (
  open: () => Stream.Stream<{ readonly _tag: "MessagesAvailable" | "KeepAlive" }, RequestError>,
  signal: (source: Metrics.WakeupSource) => Effect.Effect<unknown>,
  idle: Duration.Duration,
  reconnect: Schedule.Schedule<unknown, unknown>
): Effect.Effect<never> =>
  Effect.gen(function* () {
    let driver = yield* Schedule.driver(reconnect)
    let connections = 0
    while (true) {
      let last = yield* Clock.currentTimeMillis
      let received = 0
      if (connections++ > 0) yield* signal("reconnect")
      const run = open().pipe(
        Stream.runForEach((event) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            last = now
            received++
            return event._tag === "MessagesAvailable" ? signal("events") : Effect.void
          })
        ),
        Effect.either
      )
      const watchdog = Effect.gen(function* () {
        while (true) {
          yield* Effect.sleep(Duration.millis(Math.max(1, Duration.toMillis(idle) / 4)))
          if ((yield* Clock.currentTimeMillis) - last >= Duration.toMillis(idle)) return "idle" as const
        }
      })
      const ended = yield* Effect.raceFirst(run, watchdog)
      if (ended !== "idle" && ended._tag === "Left") {
        yield* Effect.logDebug("The inbox event stream failed; reconnecting").pipe(
          Effect.annotateLogs({ failure: ended.left._tag })
        )
      }
      if (received > 0) driver = yield* Schedule.driver(reconnect)
      const next = yield* Effect.either(driver.next(undefined))
      if (next._tag === "Left") driver = yield* Schedule.driver(reconnect)
    }
  })

/** Looks up quarantined messages and reports the new ones. Failures are logged, never fatal. */
const quarantineReporter = (
  inboxes: Context.Tag.Service<TriggerInboxes>,
  user: EndUser,
  inbox: InboxId,
  onQuarantined: StreamOptions["onQuarantined"]
): Effect.Effect<void> => {
  const seen = new Set<MessageId>()
  return inboxes.messages(user, inbox, { status: "quarantined" }).pipe(
    Effect.flatMap((messages) => {
      const fresh = messages.filter((m) => !seen.has(m.id))
      if (fresh.length === 0) return Effect.void
      for (const m of fresh) seen.add(m.id)
      return Effect.all(
        [
          Metric.incrementBy(Metrics.inboxQuarantined, fresh.length),
          Effect.logWarning("Trigger messages were quarantined by Zapier after repeated failed deliveries").pipe(
            Effect.annotateLogs({ inbox, messages: fresh.map((m) => m.id).join(",") })
          ),
          onQuarantined ? onQuarantined(fresh) : Effect.void
        ],
        { discard: true }
      )
    }),
    Effect.catchAll((e) =>
      Effect.logDebug("Could not look up quarantined messages").pipe(Effect.annotateLogs({ failure: e._tag }))
    )
  )
}

/**
 * Embedded triggers for the partner's users: a user watches one of an app's triggers, the backend ensures the
 * user's Trigger Inbox for it and consumes it in the background, and every event handled is recorded (see
 * `TriggerStore`) for the page to show.
 *
 * - **One inbox per user and trigger**: its key is derived from the user and the trigger ({@link inboxKey}), so
 *   watching again (another tab, a reload, a double click) ensures the same inbox (idempotent by key at Zapier).
 * - **One consumer per inbox**, however many requests: each consumer is a fiber in the app's scope (it outlives
 *   the request that started it and every page reload), registered under the inbox key; a watch whose consumer
 *   runs starts nothing new. Consumers of watches still `consuming` start again when the app starts.
 * - **At least once, shown once**: the handler records the event under its message id before the consumer acks
 *   it; a message delivered again is recorded once. A store failure fails the handler, so the message is
 *   released and comes back.
 * - **Requests**: a watch costs the connection check, the trigger's input fields (cached by the catalog), one
 *   ensure (and a status check until `active`); consuming costs one lease and one ack per batch of up to 10
 *   messages, woken by the inbox's Server-Sent Events (one connection per consumer), and a safety drain every
 *   5 minutes. Stopping costs one delete.
 */
import { createHash } from "node:crypto"
import { Domain, EmbeddedActions, type Errors, TriggerInbox, TriggerInboxes, Triggers } from "@effect-zapier/core"
import { Clock, Context, Effect, Exit, Fiber, Layer, Option, Ref, Schema } from "effect"
import * as Cause from "effect/Cause"
import { OfferedApps } from "./Runs.js"
import { type EventRecord, TriggerStore, WatchRecord } from "./TriggerStore.js"

/** The events a watch's view carries (the newest). */
export const eventsShown = 50

/**
 * The inbox key of `user`'s watch of `trigger`: readable, unique per user and trigger, at most 100 characters
 * (Zapier's limit), the same on every call.
 */
export const inboxKey = (user: Domain.EndUser, app: Domain.AppId, trigger: Domain.ActionKey): Domain.InboxKey => {
  const digest = createHash("sha256")
    .update(JSON.stringify([user.tenantId, user.userId, app, trigger]))
    .digest("hex")
    .slice(0, 32)
  return decodeKey(`watch.${app.slice(0, 28)}.${trigger.slice(0, 28)}.${digest}`)
}
const decodeKey = Schema.decodeSync(Domain.InboxKey)

/** What a watch request names. */
export interface WatchRequest {
  readonly app: Domain.AppId
  readonly trigger: Domain.ActionKey
  readonly inputs: Readonly<Record<string, unknown>>
}

/** What `watch` can fail with. */
export type WatchError =
  | Errors.RequestError
  | Errors.ConnectionRequired
  | Errors.ActionNotFound
  | Errors.InvalidInputs
  | Errors.InboxKeyConflict
  | Errors.InboxPaused
  | Errors.InboxNotActive
  | Errors.StoreUnavailable

/** A watch and its latest events. */
export interface WatchView {
  readonly watch: WatchRecord
  readonly running: boolean
  readonly total: number
  readonly events: ReadonlyArray<EventRecord>
}

export interface Service {
  /** Ensures the user's inbox for the trigger (inputs validated first) and its consumer. */
  readonly watch: (user: Domain.EndUser, request: WatchRequest) => Effect.Effect<WatchRecord, WatchError>
  /** The user's watches with their latest events. */
  readonly list: (user: Domain.EndUser) => Effect.Effect<ReadonlyArray<WatchView>, Errors.StoreUnavailable>
  /** Stops the consumer and deletes the inbox at Zapier; false when the user has no such watch. */
  readonly stop: (
    user: Domain.EndUser,
    key: Domain.InboxKey
  ) => Effect.Effect<boolean, Errors.RequestError | Errors.StoreUnavailable>
}

export class Watches extends Context.Tag("partner-app/Watches")<Watches, Service>() {}

const problemOf = (cause: Cause.Cause<{ readonly _tag: string; readonly message: string }>) =>
  Option.match(Cause.failureOption(cause), {
    onNone: () => ({
      tag: "Defect",
      message: "The consumer stopped on an unexpected error; watch again to restart it."
    }),
    onSome: (e) => ({ tag: e._tag, message: e.message })
  })

export const make = Effect.gen(function* () {
  const actions = yield* EmbeddedActions.EmbeddedActions
  const triggers = yield* Triggers.Triggers
  const consumer = yield* TriggerInbox.TriggerInbox
  const inboxes = yield* TriggerInboxes.TriggerInboxes
  const store = yield* TriggerStore
  const offered = yield* OfferedApps
  const scope = yield* Effect.scope
  /** The running consumers, by inbox key. */
  const running = yield* Ref.make(new Map<Domain.InboxKey, Fiber.RuntimeFiber<void, TriggerInbox.StreamError>>())
  const lock = yield* Effect.makeSemaphore(1)

  const handle = (key: Domain.InboxKey) => (payload: unknown, message: Domain.InboxMessage) =>
    store.record(key, message.id, payload)

  /** Starts the watch's consumer unless one runs; its end (paused, deleted, …) is recorded on the watch. */
  const start = (watch: WatchRecord) =>
    lock.withPermits(1)(
      Effect.gen(function* () {
        const current = (yield* Ref.get(running)).get(watch.key)
        if (current !== undefined && Option.isNone(yield* Fiber.poll(current))) return
        const fiber = yield* consumer
          .consume(watch.user, watch.inbox, handle(watch.key), {
            batch: 10,
            leaseSeconds: 60,
            onQuarantined: (messages) =>
              Effect.logWarning("trigger events quarantined by Zapier").pipe(
                Effect.annotateLogs({ "zapier.inbox": watch.inbox, count: messages.length })
              )
          })
          .pipe(
            Effect.asVoid,
            Effect.onExit((exit) =>
              Effect.zipRight(
                Ref.update(running, (m) => {
                  const next = new Map(m)
                  next.delete(watch.key)
                  return next
                }),
                // Interrupted (the app stops, or the user stopped it): the watch stays as it is.
                Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)
                  ? store.stopped(watch.key, problemOf(exit.cause)).pipe(Effect.ignoreLogged)
                  : Effect.void
              )
            ),
            // A trace of its own: the consumer outlives the request that started it.
            Effect.withSpan("PartnerApp.consumeInbox", { root: true, attributes: { "zapier.inbox": watch.inbox } }),
            Effect.forkIn(scope)
          )
        yield* Ref.update(running, (m) => new Map(m).set(watch.key, fiber))
      })
    )

  const requiresAuth = (app: Domain.AppId) => offered.find((a) => a.id === app)?.requiresAuth ?? true

  const watch = Effect.fn("PartnerApp.watchTrigger")(function* (user: Domain.EndUser, request: WatchRequest) {
    yield* Effect.annotateCurrentSpan({ "zapier.app": request.app, "zapier.trigger": request.trigger })
    const connection = requiresAuth(request.app) ? (yield* actions.ensureConnection(user, request.app)).id : null
    const subscription = yield* triggers.subscription(user, request.app, request.trigger, {
      connection,
      inputs: request.inputs
    })
    const key = inboxKey(user, request.app, request.trigger)
    const inbox = yield* consumer.ensure(user, { key, subscription })
    const now = yield* Clock.currentTimeMillis
    const record = WatchRecord.make({
      key,
      user,
      app: request.app,
      trigger: request.trigger,
      inbox: inbox.id,
      state: "consuming",
      createdAt: now,
      updatedAt: now
    })
    yield* store.upsert(record)
    yield* start(record)
    return record
  })

  const list = Effect.fn("PartnerApp.listWatches")(function* (user: Domain.EndUser) {
    const all = yield* store.watches(user)
    const live = yield* Ref.get(running)
    return yield* Effect.forEach(all, (w) =>
      Effect.map(store.events(w.key, eventsShown), ({ latest, total }) => ({
        watch: w,
        running: live.has(w.key),
        total,
        events: latest
      }))
    )
  })

  const stop = Effect.fn("PartnerApp.stopWatch")(function* (user: Domain.EndUser, key: Domain.InboxKey) {
    const found = (yield* store.watches(user)).find((w) => w.key === key)
    if (found === undefined) return false
    const fiber = (yield* Ref.get(running)).get(key)
    if (fiber !== undefined) yield* Fiber.interrupt(fiber)
    yield* store.stopped(key, undefined)
    yield* inboxes.delete(user, found.inbox)
    return true
  })

  // The watches that were consuming when the app stopped: their consumers start again (each inbox kept its
  // messages meanwhile; those leased and not acked come back when their lease lapses).
  const resumed = yield* store.consuming
  yield* Effect.forEach(resumed, start, { discard: true })

  return Watches.of({ watch, list, stop })
})

export const layer: Layer.Layer<
  Watches,
  Errors.StoreUnavailable,
  | EmbeddedActions.EmbeddedActions
  | Triggers.Triggers
  | TriggerInbox.TriggerInbox
  | TriggerInboxes.TriggerInboxes
  | TriggerStore
  | OfferedApps
> = Layer.scoped(Watches, make)

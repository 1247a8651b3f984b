/**
 * Area: the Trigger Inbox (inboxes ensured by key, leases, ack/release, redelivery, quarantine, pause/resume with
 * reasons, Server-Sent Events, notification POSTs): the model's rules (`model/inbox.ts`) on the kit's clock, the
 * control methods that emit events and script inboxes, and core's `TriggerInboxes` in memory. Its routes and the
 * notification POSTs are in `triggerInboxRoutes.ts`.
 *
 * @internal
 */
import { Domain, Errors, TriggerInboxes } from "@effect-zapier/core"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import type { ClientKit } from "../client.js"
import { ApiFailure } from "../model/failures.js"
import type { InboxCounts, InboxRecord, MessageRecord, Refusal } from "../model/inbox.js"
import { makeInboxModel } from "../model/inbox.js"
import type { Kit } from "../model/state.js"
import { misuse, userKey } from "../model/state.js"

/** The endpoints of this area, as the ledger and fault rules name them (without the path prefix). */
export const endpoints = {
  ensureInbox: "PUT /inboxes",
  listInboxes: "GET /inboxes",
  getInbox: "GET /inboxes/{id}",
  updateInbox: "PATCH /inboxes/{id}",
  deleteInbox: "DELETE /inboxes/{id}",
  pauseInbox: "POST /inboxes/{id}/pause",
  resumeInbox: "POST /inboxes/{id}/resume",
  listMessages: "GET /inboxes/{id}/messages",
  lease: "POST /inboxes/{id}/messages/lease",
  ack: "POST /inboxes/{id}/messages/ack",
  release: "POST /inboxes/{id}/messages/release",
  events: "GET /inboxes/{id}/events"
} as const

/** The path prefixes the server answers under (the guides' and the OpenAPI file's). */
export const prefixes = ["/trigger-inbox/api/v1", "/trigger-inbox/v1"] as const

/**
 * An inbox as the model holds it.
 * @since 0.1.0
 * @category control
 */
export interface InboxInfo {
  readonly id: Domain.InboxId
  readonly key: string
  readonly user: string
  readonly status: string
  readonly pausedReason: string | null
  readonly notificationUrl: string | null
  readonly messages: number
}

/**
 * A message as the model holds it (any inbox's).
 * @since 0.1.0
 * @category control
 */
export interface MessageInfo {
  readonly id: Domain.MessageId
  readonly inbox: Domain.InboxId
  readonly status: "available" | "leased" | "acked" | "quarantined"
  readonly leaseCount: number
  readonly createdAt: number
  readonly payload: unknown
}

/**
 * A notification the server posted to an inbox's `notification_url`.
 * @since 0.1.0
 * @category control
 */
export interface NotificationEntry {
  readonly at: number
  readonly inbox: Domain.InboxId
  readonly url: string
  readonly count: number
  readonly redelivery: boolean
  /** The callback's HTTP status, or 0 when it could not be reached. */
  readonly status: number
}

/** The control methods of this area. */
export interface TriggerInboxControl {
  /**
   * Emits trigger events into an inbox (its id, or the user's inbox with that key): the given payloads, or
   * `count` sample payloads (`{id, text, channel, ts}`). Returns the new message ids.
   */
  readonly emitTriggerEvents: (
    inbox: string | { readonly user: Domain.EndUser; readonly key: string },
    events: number | ReadonlyArray<unknown>
  ) => Effect.Effect<ReadonlyArray<Domain.MessageId>, Errors.NotFound>
  /** The user's inbox with this key. */
  readonly findInbox: (user: Domain.EndUser, key: string) => Effect.Effect<InboxInfo, Errors.NotFound>
  /** Every inbox. */
  readonly inboxes: Effect.Effect<ReadonlyArray<InboxInfo>>
  /** Pauses an inbox with a reason (`user`, `authentication`, `subscribe_failed`, …). */
  readonly pauseInbox: (inbox: string, reason: string) => Effect.Effect<void, Errors.NotFound>
  readonly resumeInbox: (inbox: string) => Effect.Effect<void, Errors.NotFound>
  /** The inbox's initialization fails (status `initialization_failure` once its activation delay passes). */
  readonly failInboxInitialization: (inbox: string) => Effect.Effect<void, Errors.NotFound>
  /** How long new inboxes stay `initializing` (default 1 s) and after how many leases a message is quarantined (5). */
  readonly setInboxSettings: (settings: {
    readonly activation?: Duration.DurationInput | undefined
    readonly maxLeases?: number | undefined
  }) => Effect.Effect<void>
  /** Every message of every inbox, in emission order. */
  readonly inboxMessages: Effect.Effect<ReadonlyArray<MessageInfo>>
  /** Counts: emitted, leases, leased messages, acked, released, redelivered, quarantined, refused acks. */
  readonly inboxCounts: Effect.Effect<InboxCounts>
  /** The notification POSTs the server made. */
  readonly notifications: Effect.Effect<ReadonlyArray<NotificationEntry>>
}

const toInfo = (i: InboxRecord): InboxInfo => ({
  id: Domain.InboxId.make(i.id),
  key: i.key,
  user: i.userKey,
  status: i.status,
  pausedReason: i.pausedReason,
  notificationUrl: i.notificationUrl,
  messages: i.messages.size
})

const samplePayload = (n: number, at: number) => ({
  id: `evt-${n}`,
  text: `Event ${n}`,
  channel: "#general",
  ts: (at / 1000).toFixed(6)
})

/** The model side: the inbox model on the kit's clock, and the controls. */
export const model = (kit: Kit) =>
  Effect.gen(function* () {
    const inboxes = yield* makeInboxModel(kit.clock)
    const notifications = yield* Ref.make<ReadonlyArray<NotificationEntry>>([])
    const find = (method: string, inbox: string | { readonly user: Domain.EndUser; readonly key: string }) =>
      typeof inbox === "string"
        ? Effect.succeed(inbox)
        : Effect.flatMap(inboxes.byKey(userKey(inbox.user), inbox.key), (found) =>
            found === undefined ? Effect.fail(misuse(method, `inbox ${inbox.key}`)) : Effect.succeed(found.id)
          )
    const notFound = (method: string, id: string) => (_: Refusal) => misuse(method, `inbox ${id}`)
    let emitted = 0
    const control: TriggerInboxControl = {
      emitTriggerEvents: (inbox, events) =>
        Effect.gen(function* () {
          const id = yield* find("emitTriggerEvents", inbox)
          const at = yield* kit.now
          const payloads =
            typeof events === "number" ? Array.from({ length: events }, () => samplePayload(++emitted, at)) : events
          const ids = yield* Effect.mapError(inboxes.emit(id, payloads), notFound("emitTriggerEvents", id))
          return ids.map((m) => Domain.MessageId.make(m))
        }),
      findInbox: (user, key) =>
        Effect.flatMap(inboxes.byKey(userKey(user), key), (found) =>
          found === undefined ? Effect.fail(misuse("findInbox", `inbox ${key}`)) : Effect.succeed(toInfo(found))
        ),
      inboxes: Effect.map(inboxes.sweep.pipe(Effect.zipRight(inboxes.allInboxes)), (all) => all.map(toInfo)),
      pauseInbox: (id, reason) =>
        Effect.asVoid(Effect.mapError(inboxes.pause(undefined, id, reason), notFound("pauseInbox", id))),
      resumeInbox: (id) => Effect.asVoid(Effect.mapError(inboxes.resume(undefined, id), notFound("resumeInbox", id))),
      failInboxInitialization: (id) =>
        Effect.mapError(inboxes.failInitialization(id), notFound("failInboxInitialization", id)),
      setInboxSettings: (settings) =>
        Ref.update(inboxes.settings, (s) => ({
          activationMillis:
            settings.activation !== undefined
              ? Duration.toMillis(Duration.decode(settings.activation))
              : s.activationMillis,
          maxLeases: settings.maxLeases ?? s.maxLeases
        })),
      inboxMessages: Effect.map(inboxes.allMessages, (all) =>
        all.map((m) => ({
          id: Domain.MessageId.make(m.id),
          inbox: Domain.InboxId.make(m.inboxId),
          status: m.status,
          leaseCount: m.leaseCount,
          createdAt: m.createdAt,
          payload: m.payload
        }))
      ),
      inboxCounts: inboxes.counts,
      notifications: Ref.get(notifications)
    }
    return { kit, inboxes, notifications, control }
  })

/** The model side of this area. */
export type Model = Effect.Effect.Success<ReturnType<typeof model>>

// ---------------------------------------------------------------------------------------------------------------
// In memory
// ---------------------------------------------------------------------------------------------------------------

const toFailure = (r: Refusal): ApiFailure =>
  r.status === 404 ? ApiFailure.notFound("inbox") : ApiFailure.fromStatus(r.status, r.code, r.detail)

const knownStatus = new Set<string>(Domain.InboxStatus.literals)
const knownReason = new Set<string>(Domain.PausedReason.literals)

const toDomainInbox = (i: InboxRecord): Domain.Inbox =>
  Domain.Inbox.make({
    id: Domain.InboxId.make(i.id),
    key: Domain.InboxKey.make(i.key),
    status: knownStatus.has(i.status) ? (i.status as Domain.InboxStatus) : "unknown",
    ...(i.pausedReason !== null
      ? { pausedReason: knownReason.has(i.pausedReason) ? (i.pausedReason as Domain.PausedReason) : "unknown" }
      : {}),
    notificationUrl: i.notificationUrl,
    subscription: Domain.Subscription.make({
      app: Domain.AppId.make(i.subscription.appKey),
      action: Domain.ActionKey.make(i.subscription.actionKey),
      inputs: i.subscription.inputs,
      connection: i.subscription.connectionId === null ? null : Domain.ConnectionId.make(i.subscription.connectionId)
    })
  })

const toDomainMessage = (inbox: string, msg: MessageRecord): Domain.InboxMessage =>
  Domain.InboxMessage.make({
    id: Domain.MessageId.make(msg.id),
    inbox: Domain.InboxId.make(inbox),
    createdAt: DateTime.unsafeMake(msg.createdAt),
    status: msg.status,
    leaseCount: msg.leaseCount,
    possibleDuplicate: msg.leaseCount > 1,
    payload: msg.payload
  })

/** A 409 of the inbox routes, as the shared client maps it (`BadRequest` with the failure's status). */
const isConflict = (e: Errors.RequestError | Errors.RunOutcomeUnknown) =>
  e._tag === "BadRequest" && e.errors.some((x) => x.status === 409)

/** Core's `TriggerInboxes`, in memory: each call through the shared client (tokens, fault plan, ledger). */
export const services = (client: ClientKit, m: Model) => {
  const { request } = client
  const call = <A>(
    endpoint: string,
    path: string,
    method: string,
    user: Domain.EndUser,
    body: Effect.Effect<A, Refusal>
  ) =>
    request({ method, endpoint, path: `${prefixes[0]}${path}` }, user, Effect.mapError(body, toFailure)).pipe(
      Effect.catchTag("RunOutcomeUnknown", Effect.die)
    )

  const inboxes = TriggerInboxes.TriggerInboxes.of({
    ensure: (user, r) =>
      call(
        endpoints.ensureInbox,
        "/inboxes",
        "PUT",
        user,
        m.inboxes.ensure(userKey(user), {
          key: r.key,
          notificationUrl: r.notificationUrl ?? null,
          subscription: {
            appKey: r.subscription.app,
            actionKey: r.subscription.action,
            inputs: r.subscription.inputs,
            connectionId: r.subscription.connection
          }
        })
      ).pipe(
        Effect.map((x) => toDomainInbox(x.inbox)),
        Effect.catchIf(isConflict, () => Effect.fail(new Errors.InboxKeyConflict({ key: r.key })))
      ),
    get: (user, id) =>
      Effect.map(
        call(endpoints.getInbox, `/inboxes/${id}`, "GET", user, m.inboxes.get(userKey(user), id)),
        toDomainInbox
      ),
    list: (user, filter) =>
      Effect.map(
        call(endpoints.listInboxes, "/inboxes", "GET", user, m.inboxes.list(userKey(user), { ...filter })),
        (all) => all.map(toDomainInbox)
      ),
    update: (user, id, change) =>
      Effect.map(
        call(
          endpoints.updateInbox,
          `/inboxes/${id}`,
          "PATCH",
          user,
          m.inboxes.setNotificationUrl(userKey(user), id, change.notificationUrl)
        ),
        toDomainInbox
      ),
    delete: (user, id) =>
      call(endpoints.deleteInbox, `/inboxes/${id}`, "DELETE", user, m.inboxes.remove(userKey(user), id)),
    pause: (user, id) =>
      Effect.map(
        call(endpoints.pauseInbox, `/inboxes/${id}/pause`, "POST", user, m.inboxes.pause(userKey(user), id, "user")),
        toDomainInbox
      ),
    resume: (user, id) =>
      Effect.map(
        call(endpoints.resumeInbox, `/inboxes/${id}/resume`, "POST", user, m.inboxes.resume(userKey(user), id)),
        toDomainInbox
      ),
    lease: (user, id, options) =>
      Effect.gen(function* () {
        const limit = Math.min(100, Math.max(1, Math.round(options?.limit ?? 10)))
        const leaseSeconds = Math.min(3600, Math.max(1, Math.round(options?.leaseSeconds ?? 300)))
        const result = yield* call(
          endpoints.lease,
          `/inboxes/${id}/messages/lease`,
          "POST",
          user,
          m.inboxes.lease(userKey(user), id, { leaseSeconds, limit })
        ).pipe(
          Effect.catchIf(isConflict, () =>
            Effect.flatMap(
              Effect.map(
                call(endpoints.getInbox, `/inboxes/${id}`, "GET", user, m.inboxes.get(userKey(user), id)),
                toDomainInbox
              ),
              (inbox): Effect.Effect<never, Errors.InboxPaused | Errors.InboxNotActive> =>
                inbox.status === "paused"
                  ? Effect.fail(
                      new Errors.InboxPaused({
                        inbox: inbox.id,
                        reason: inbox.pausedReason ?? "unknown",
                        app: inbox.subscription.app,
                        connection: inbox.subscription.connection
                      })
                    )
                  : Effect.fail(new Errors.InboxNotActive({ inbox: inbox.id, status: inbox.status }))
            )
          )
        )
        const inbox = toDomainInbox(result.inbox)
        return Domain.Lease.make({
          ...(result.leaseId !== null ? { leaseId: Domain.LeaseId.make(result.leaseId) } : {}),
          ...(result.leasedUntil !== null ? { leasedUntil: DateTime.unsafeMake(result.leasedUntil) } : {}),
          messages: result.messages.map((msg) => toDomainMessage(id, msg)),
          inboxStatus: inbox.status,
          ...(inbox.pausedReason !== undefined ? { pausedReason: inbox.pausedReason } : {})
        })
      }),
    ack: (user, id, lease, ids) =>
      Effect.asVoid(
        call(
          endpoints.ack,
          `/inboxes/${id}/messages/ack`,
          "POST",
          user,
          m.inboxes.settle("ack", userKey(user), id, lease, ids)
        ).pipe(
          Effect.catchIf(isConflict, () =>
            Effect.fail(new Errors.LeaseExpired({ inbox: id, lease, messages: ids ?? [] }))
          )
        )
      ),
    release: (user, id, lease, ids) =>
      Effect.asVoid(
        call(
          endpoints.release,
          `/inboxes/${id}/messages/release`,
          "POST",
          user,
          m.inboxes.settle("release", userKey(user), id, lease, ids)
        ).pipe(
          Effect.catchIf(isConflict, () =>
            Effect.fail(new Errors.LeaseExpired({ inbox: id, lease, messages: ids ?? [] }))
          )
        )
      ),
    messages: (user, id, filter) =>
      Effect.map(
        call(
          endpoints.listMessages,
          `/inboxes/${id}/messages`,
          "GET",
          user,
          m.inboxes.messages(userKey(user), id, filter?.status)
        ),
        (all) => all.map((msg) => toDomainMessage(id, msg))
      ),
    events: (user, id) =>
      Stream.unwrapScoped(
        Effect.map(call(endpoints.events, `/inboxes/${id}/events`, "GET", user, m.inboxes.get(userKey(user), id)), () =>
          Stream.merge(
            Stream.fromPubSub(m.inboxes.wakeups).pipe(
              Stream.filter((w) => w.inboxId === id),
              Stream.as<TriggerInboxes.InboxEvent>({ _tag: "MessagesAvailable" })
            ),
            // The server's heartbeats, every 15 s on the model's clock.
            Stream.repeatEffect(
              Effect.as(m.kit.clock.sleep(Duration.seconds(15)), { _tag: "KeepAlive" } as TriggerInboxes.InboxEvent)
            )
          )
        )
      )
  })
  return Context.make(TriggerInboxes.TriggerInboxes, inboxes)
}

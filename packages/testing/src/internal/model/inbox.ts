/**
 * The fake Trigger Inbox: inboxes per end user (ensured by key), a subscription each, messages emitted by the
 * test, leases that expire, redelivery, quarantine after repeated leases, pause/resume with reasons, and the
 * wake-ups the server turns into SSE frames and notification POSTs. Shared by the in-memory layer and the HTTP
 * server; time is the `Clock` captured when the model is made.
 *
 * Rules (from Zapier's Trigger Inbox guides and API reference):
 * - a new inbox is `initializing` until `activation` has passed, then `active` (or `initialization_failure` when
 *   scripted);
 * - a lease takes up to `lease_limit` available messages, oldest first, for `lease_seconds`; each lease counts;
 * - an unacked leased message comes back when its lease expires; a release gives it back at once (the count is not
 *   refunded); a message whose lease count reached `maxLeases` is quarantined instead of coming back;
 * - a paused inbox still hands out what it holds; paused and drained, a lease is refused (409 with `detail`);
 * - an ack or release naming an expired or unknown lease is refused (409 with `detail`: inferred, undocumented).
 * @internal
 */
import type { Domain } from "@effect-zapier/core"
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as PubSub from "effect/PubSub"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"

/** The inbox statuses and paused reasons the fake uses (Zapier's words). @internal */
export type InboxStatus = "initializing" | "active" | "paused" | "deleting" | "initialization_failure"

/** @internal */
export interface SubscriptionRecord {
  readonly appKey: string
  readonly actionKey: string
  readonly inputs: Readonly<Record<string, unknown>>
  readonly connectionId: string | null
}

/** @internal */
export interface MessageRecord {
  readonly id: string
  readonly seq: number
  readonly createdAt: number
  readonly payload: unknown
  readonly status: "available" | "leased" | "acked" | "quarantined"
  readonly leaseCount: number
  readonly leaseId: string | undefined
  readonly leasedUntil: number | undefined
  /** Set once a message came back after a lease (for the notification's `redelivery`). */
  readonly redelivered: boolean
}

/** @internal */
export interface InboxRecord {
  readonly id: string
  readonly userKey: string
  readonly key: string
  readonly status: InboxStatus
  readonly pausedReason: string | null
  readonly notificationUrl: string | null
  readonly subscription: SubscriptionRecord
  readonly createdAt: number
  readonly activateAt: number
  readonly failInitialization: boolean
  readonly messages: ReadonlyMap<string, MessageRecord>
}

/** A wake-up: messages became available in an inbox (new ones, or come back after a lease). @internal */
export interface Wakeup {
  readonly inboxId: string
  readonly userKey: string
  readonly count: number
  readonly redelivery: boolean
  readonly notificationUrl: string | null
}

/** A refusal, as the server answers it. @internal */
export interface Refusal {
  readonly _tag: "Refusal"
  readonly status: number
  readonly detail: string
  readonly code: string
}

const refuse = (status: number, code: string, detail: string): Refusal => ({ _tag: "Refusal", status, code, detail })

/** @internal */
export interface LeaseResult {
  readonly leaseId: string | null
  readonly leasedUntil: number | null
  readonly messages: ReadonlyArray<MessageRecord>
  readonly inbox: InboxRecord
}

/** The model's knobs. @internal */
export interface InboxSettings {
  /** How long a new inbox stays `initializing`; default 1 second. */
  readonly activationMillis: number
  /** Leases after which an unacked message is quarantined; default 5. */
  readonly maxLeases: number
}

/** Counts the tests read. @internal */
export interface InboxCounts {
  readonly emitted: number
  readonly leases: number
  readonly leasedMessages: number
  readonly acked: number
  readonly released: number
  readonly redelivered: number
  readonly quarantined: number
  readonly refusedAcks: number
}

interface State {
  readonly inboxes: ReadonlyMap<string, InboxRecord>
  readonly seq: number
  readonly counts: InboxCounts
}

const zero: InboxCounts = {
  emitted: 0,
  leases: 0,
  leasedMessages: 0,
  acked: 0,
  released: 0,
  redelivered: 0,
  quarantined: 0,
  refusedAcks: 0
}

const sameSubscription = (a: SubscriptionRecord, b: SubscriptionRecord) =>
  a.appKey === b.appKey &&
  a.actionKey === b.actionKey &&
  a.connectionId === b.connectionId &&
  JSON.stringify(a.inputs) === JSON.stringify(b.inputs)

const randomId = (prefix: string): string => `${prefix}${globalThis.crypto.randomUUID().replace(/-/g, "").slice(0, 20)}`

/** The user key the fake uses everywhere. @internal */
export const userKeyOf = (user: Domain.EndUser): string => JSON.stringify([user.tenantId, user.userId])

/** @internal */
export interface InboxModel {
  readonly settings: Ref.Ref<InboxSettings>
  /** Wake-ups, for SSE streams and notification POSTs. */
  readonly wakeups: PubSub.PubSub<Wakeup>
  readonly ensure: (
    userKey: string,
    request: {
      readonly key: string
      readonly notificationUrl: string | null
      readonly subscription: SubscriptionRecord
    }
  ) => Effect.Effect<{ readonly inbox: InboxRecord; readonly created: boolean }, Refusal>
  readonly get: (userKey: string, id: string) => Effect.Effect<InboxRecord, Refusal>
  readonly list: (
    userKey: string,
    filter: { readonly key?: string | undefined; readonly status?: string | undefined }
  ) => Effect.Effect<ReadonlyArray<InboxRecord>>
  readonly setNotificationUrl: (userKey: string, id: string, url: string | null) => Effect.Effect<InboxRecord, Refusal>
  readonly remove: (userKey: string, id: string) => Effect.Effect<void, Refusal>
  readonly pause: (userKey: string | undefined, id: string, reason: string) => Effect.Effect<InboxRecord, Refusal>
  readonly resume: (userKey: string | undefined, id: string) => Effect.Effect<InboxRecord, Refusal>
  readonly lease: (
    userKey: string,
    id: string,
    options: { readonly leaseSeconds: number; readonly limit: number }
  ) => Effect.Effect<LeaseResult, Refusal>
  readonly settle: (
    kind: "ack" | "release",
    userKey: string,
    id: string,
    leaseId: string,
    messageIds: ReadonlyArray<string> | undefined
  ) => Effect.Effect<ReadonlyArray<string>, Refusal>
  readonly messages: (
    userKey: string,
    id: string,
    status: string | undefined
  ) => Effect.Effect<ReadonlyArray<MessageRecord>, Refusal>
  /** Control: emit events into an inbox (found by id, or by key for a user). */
  readonly emit: (id: string, payloads: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<string>, Refusal>
  /** Control: the inbox with this key for this user. */
  readonly byKey: (userKey: string, key: string) => Effect.Effect<InboxRecord | undefined>
  /** Control: make the next initialization of this inbox fail (status `initialization_failure`). */
  readonly failInitialization: (id: string) => Effect.Effect<void, Refusal>
  /** Applies the clock: activations, expired leases (redelivery or quarantine). Returns the wake-ups it caused. */
  readonly sweep: Effect.Effect<void>
  readonly counts: Effect.Effect<InboxCounts>
  /** Every inbox. */
  readonly allInboxes: Effect.Effect<ReadonlyArray<InboxRecord>>
  /** Every message of every inbox, for tests (ordered by emission). */
  readonly allMessages: Effect.Effect<ReadonlyArray<MessageRecord & { readonly inboxId: string }>>
}

/** @internal */
export const defaultInboxSettings: InboxSettings = { activationMillis: 1000, maxLeases: 5 }

/** Builds a fresh model on `clock`. @internal */
export const makeInboxModel = (
  clock: Clock.Clock,
  initial: Partial<InboxSettings> = {}
): Effect.Effect<InboxModel, never, Scope.Scope> =>
  Effect.gen(function* () {
    // Lease timers run in the model's scope: closing the fake stops them.
    const scope = yield* Effect.scope
    const settings = yield* Ref.make<InboxSettings>({ ...defaultInboxSettings, ...initial })
    const state = yield* Ref.make<State>({ inboxes: new Map(), seq: 0, counts: zero })
    const wakeups = yield* PubSub.unbounded<Wakeup>()
    const now = clock.currentTimeMillis

    /** Applies time to one inbox: activation and expired leases. */
    const tick = (
      inbox: InboxRecord,
      at: number,
      maxLeases: number,
      counts: { value: InboxCounts },
      out: Array<Wakeup>
    ) => {
      let next = inbox
      if (next.status === "initializing" && at >= next.activateAt) {
        next = { ...next, status: next.failInitialization ? "initialization_failure" : "active" }
      }
      let changed: Map<string, MessageRecord> | undefined
      let back = 0
      for (const m of next.messages.values()) {
        if (m.status !== "leased" || m.leasedUntil === undefined || m.leasedUntil > at) continue
        changed ??= new Map(next.messages)
        if (m.leaseCount >= maxLeases) {
          changed.set(m.id, { ...m, status: "quarantined", leaseId: undefined, leasedUntil: undefined })
          counts.value = { ...counts.value, quarantined: counts.value.quarantined + 1 }
        } else {
          changed.set(m.id, {
            ...m,
            status: "available",
            leaseId: undefined,
            leasedUntil: undefined,
            redelivered: true
          })
          counts.value = { ...counts.value, redelivered: counts.value.redelivered + 1 }
          back++
        }
      }
      if (changed !== undefined) next = { ...next, messages: changed }
      if (back > 0) {
        out.push({
          inboxId: next.id,
          userKey: next.userKey,
          count: back,
          redelivery: true,
          notificationUrl: next.notificationUrl
        })
      }
      return next
    }

    /** Runs `f` on the swept state, then publishes the wake-ups. */
    const update = <A, E>(
      f: (s: State, at: number, out: Array<Wakeup>) => readonly [A | E, State]
    ): Effect.Effect<A, E> =>
      Effect.gen(function* () {
        const at = yield* now
        const { maxLeases } = yield* Ref.get(settings)
        const out: Array<Wakeup> = []
        const result = yield* Ref.modify(state, (s) => {
          const counts = { value: s.counts }
          const inboxes = new Map<string, InboxRecord>()
          for (const [id, inbox] of s.inboxes) inboxes.set(id, tick(inbox, at, maxLeases, counts, out))
          return f({ ...s, inboxes, counts: counts.value }, at, out)
        })
        if (out.length > 0) yield* PubSub.publishAll(wakeups, out)
        if (typeof result === "object" && result !== null && "_tag" in result && result._tag === "Refusal") {
          return yield* Effect.fail(result as E)
        }
        return result as A
      })

    const sweep = update<void, never>((s) => [undefined, s])

    const notFound = refuse(404, "not_found", "Inbox not found.")

    const owned = (s: State, userKey: string | undefined, id: string): InboxRecord | Refusal => {
      const inbox = s.inboxes.get(id)
      return inbox === undefined || (userKey !== undefined && inbox.userKey !== userKey) ? notFound : inbox
    }

    const put = (s: State, inbox: InboxRecord): State => ({ ...s, inboxes: new Map(s.inboxes).set(inbox.id, inbox) })

    const isRefusal = (u: unknown): u is Refusal =>
      typeof u === "object" && u !== null && "_tag" in u && u._tag === "Refusal"

    const ensure: InboxModel["ensure"] = (userKey, request) =>
      Effect.flatMap(Ref.get(settings), ({ activationMillis }) =>
        update<{ readonly inbox: InboxRecord; readonly created: boolean }, Refusal>((s, at) => {
          for (const inbox of s.inboxes.values()) {
            if (inbox.userKey !== userKey || inbox.key !== request.key) continue
            if (!sameSubscription(inbox.subscription, request.subscription)) {
              return [refuse(409, "conflict", "An inbox with this key exists with a different subscription."), s]
            }
            return [{ inbox, created: false }, s]
          }
          const inbox: InboxRecord = {
            id: randomId("inb_"),
            userKey,
            key: request.key,
            status: activationMillis <= 0 ? "active" : "initializing",
            pausedReason: null,
            notificationUrl: request.notificationUrl,
            subscription: request.subscription,
            createdAt: at,
            activateAt: at + activationMillis,
            failInitialization: false,
            messages: new Map()
          }
          return [{ inbox, created: true }, put(s, inbox)]
        })
      )

    const get: InboxModel["get"] = (userKey, id) =>
      update<InboxRecord, Refusal>((s) => {
        const inbox = owned(s, userKey, id)
        return [inbox, s]
      })

    const list: InboxModel["list"] = (userKey, filter) =>
      update<ReadonlyArray<InboxRecord>, never>((s) => [
        [...s.inboxes.values()].filter(
          (i) =>
            i.userKey === userKey &&
            (filter.key === undefined || i.key === filter.key) &&
            (filter.status === undefined || i.status === filter.status)
        ),
        s
      ])

    const modify = (userKey: string | undefined, id: string, f: (inbox: InboxRecord) => InboxRecord | Refusal) =>
      update<InboxRecord, Refusal>((s) => {
        const inbox = owned(s, userKey, id)
        if (isRefusal(inbox)) return [inbox, s]
        const next = f(inbox)
        return isRefusal(next) ? [next, s] : [next, put(s, next)]
      })

    const remove: InboxModel["remove"] = (userKey, id) =>
      update<void, Refusal>((s) => {
        const inbox = owned(s, userKey, id)
        if (isRefusal(inbox)) return [inbox, s]
        const inboxes = new Map(s.inboxes)
        inboxes.delete(id)
        return [undefined, { ...s, inboxes }]
      })

    const available = (inbox: InboxRecord) => [...inbox.messages.values()].filter((m) => m.status === "available")

    const resume: InboxModel["resume"] = (userKey, id) =>
      Effect.tap(
        modify(userKey, id, (inbox) =>
          inbox.status === "paused" ? { ...inbox, status: "active", pausedReason: null } : inbox
        ),
        (inbox) => {
          const count = available(inbox).length
          return count > 0
            ? PubSub.publish(wakeups, {
                inboxId: inbox.id,
                userKey: inbox.userKey,
                count,
                redelivery: false,
                notificationUrl: inbox.notificationUrl
              })
            : Effect.void
        }
      )

    /** When a lease expires, its unacked messages come back: a timer per lease publishes that wake-up on time. */
    const expireAt = (until: number) =>
      Effect.flatMap(now, (at) =>
        Effect.forkIn(Effect.zipRight(clock.sleep(Duration.millis(Math.max(0, until - at) + 1)), sweep), scope)
      )

    const lease: InboxModel["lease"] = (userKey, id, options) =>
      Effect.tap(leaseNow(userKey, id, options), (r) =>
        r.leasedUntil === null ? Effect.void : expireAt(r.leasedUntil)
      )

    const leaseNow: InboxModel["lease"] = (userKey, id, options) =>
      update<LeaseResult, Refusal>((s, at) => {
        const inbox = owned(s, userKey, id)
        if (isRefusal(inbox)) return [inbox, s]
        if (
          inbox.status === "initializing" ||
          inbox.status === "initialization_failure" ||
          inbox.status === "deleting"
        ) {
          return [refuse(409, "inbox_not_active", `The inbox is ${inbox.status}.`), s]
        }
        const ready = available(inbox).sort((a, b) => a.seq - b.seq)
        if (inbox.status === "paused" && ready.length === 0) {
          return [refuse(409, "inbox_paused", "The inbox is paused and has no messages left."), s]
        }
        const taken = ready.slice(0, options.limit)
        if (taken.length === 0) {
          return [{ leaseId: null, leasedUntil: null, messages: [], inbox }, s]
        }
        const leaseId = randomId("lse_")
        const until = at + options.leaseSeconds * 1000
        const messages = new Map(inbox.messages)
        const leased = taken.map((m) => {
          const next: MessageRecord = {
            ...m,
            status: "leased",
            leaseCount: m.leaseCount + 1,
            leaseId,
            leasedUntil: until
          }
          messages.set(m.id, next)
          return next
        })
        const nextInbox = { ...inbox, messages }
        const counts = {
          ...s.counts,
          leases: s.counts.leases + 1,
          leasedMessages: s.counts.leasedMessages + leased.length
        }
        return [
          { leaseId, leasedUntil: until, messages: leased, inbox: nextInbox },
          { ...put(s, nextInbox), counts }
        ]
      })

    const settle: InboxModel["settle"] = (kind, userKey, id, leaseId, messageIds) =>
      Effect.flatMap(Ref.get(settings), ({ maxLeases }) =>
        update<ReadonlyArray<string>, Refusal>((s, at, out) => {
          const inbox = owned(s, userKey, id)
          if (isRefusal(inbox)) return [inbox, s]
          const held = [...inbox.messages.values()].filter((m) => m.status === "leased" && m.leaseId === leaseId)
          // A replayed ack (its first answer was lost) finds its messages acked under this lease: the same answer.
          const replayed = [...inbox.messages.values()].filter(
            (m) =>
              m.status === "acked" && m.leaseId === leaseId && (messageIds === undefined || messageIds.includes(m.id))
          )
          if (kind === "ack" && held.length === 0 && replayed.length > 0) return [replayed.map((m) => m.id), s]
          if (held.length === 0 || held.some((m) => (m.leasedUntil ?? 0) <= at)) {
            return [
              refuse(409, "lease_expired", "The lease has expired or does not exist."),
              { ...s, counts: { ...s.counts, refusedAcks: s.counts.refusedAcks + 1 } }
            ]
          }
          const wanted = messageIds === undefined ? undefined : new Set(messageIds)
          const messages = new Map(inbox.messages)
          const done: Array<string> = []
          let back = 0
          let quarantined = 0
          for (const m of held) {
            if (wanted !== undefined && !wanted.has(m.id)) continue
            done.push(m.id)
            if (kind === "ack") {
              messages.set(m.id, { ...m, status: "acked", leasedUntil: undefined })
            } else if (m.leaseCount >= maxLeases) {
              messages.set(m.id, { ...m, status: "quarantined", leaseId: undefined, leasedUntil: undefined })
              quarantined++
            } else {
              messages.set(m.id, { ...m, status: "available", leaseId: undefined, leasedUntil: undefined })
              back++
            }
          }
          if (back > 0) {
            out.push({
              inboxId: inbox.id,
              userKey: inbox.userKey,
              count: back,
              redelivery: true,
              notificationUrl: inbox.notificationUrl
            })
          }
          const counts =
            kind === "ack"
              ? { ...s.counts, acked: s.counts.acked + done.length }
              : {
                  ...s.counts,
                  released: s.counts.released + done.length,
                  quarantined: s.counts.quarantined + quarantined
                }
          return [done, { ...put(s, { ...inbox, messages }), counts }]
        })
      )

    const messages: InboxModel["messages"] = (userKey, id, status) =>
      update<ReadonlyArray<MessageRecord>, Refusal>((s) => {
        const inbox = owned(s, userKey, id)
        if (isRefusal(inbox)) return [inbox, s]
        const all = [...inbox.messages.values()].sort((a, b) => a.seq - b.seq)
        return [status === undefined ? all : all.filter((m) => m.status === status), s]
      })

    const emit: InboxModel["emit"] = (id, payloads) =>
      update<ReadonlyArray<string>, Refusal>((s, at, out) => {
        const inbox = owned(s, undefined, id)
        if (isRefusal(inbox)) return [inbox, s]
        const messages = new Map(inbox.messages)
        const ids: Array<string> = []
        let seq = s.seq
        for (const payload of payloads) {
          const mid = randomId("msg_")
          seq++
          messages.set(mid, {
            id: mid,
            seq,
            createdAt: at,
            payload,
            status: "available",
            leaseCount: 0,
            leaseId: undefined,
            leasedUntil: undefined,
            redelivered: false
          })
          ids.push(mid)
        }
        if (ids.length > 0) {
          out.push({
            inboxId: inbox.id,
            userKey: inbox.userKey,
            count: ids.length,
            redelivery: false,
            notificationUrl: inbox.notificationUrl
          })
        }
        const counts = { ...s.counts, emitted: s.counts.emitted + ids.length }
        return [ids, { ...put(s, { ...inbox, messages }), seq, counts }]
      })

    return {
      settings,
      wakeups,
      ensure,
      get,
      list,
      setNotificationUrl: (userKey, id, url) => modify(userKey, id, (inbox) => ({ ...inbox, notificationUrl: url })),
      remove,
      pause: (userKey, id, reason) =>
        modify(userKey, id, (inbox) =>
          inbox.status === "active" || inbox.status === "paused"
            ? { ...inbox, status: "paused", pausedReason: reason }
            : refuse(409, "inbox_not_active", `The inbox is ${inbox.status}.`)
        ),
      resume,
      lease,
      settle,
      messages,
      emit,
      byKey: (userKey, key) =>
        Effect.map(Ref.get(state), (s) => [...s.inboxes.values()].find((i) => i.userKey === userKey && i.key === key)),
      failInitialization: (id) =>
        Effect.asVoid(modify(undefined, id, (inbox) => ({ ...inbox, failInitialization: true }))),
      sweep,
      counts: Effect.map(Ref.get(state), (s) => s.counts),
      allInboxes: Effect.map(Ref.get(state), (s) => [...s.inboxes.values()]),
      allMessages: Effect.map(Ref.get(state), (s) =>
        [...s.inboxes.values()]
          .flatMap((i) => [...i.messages.values()].map((m) => ({ ...m, inboxId: i.id })))
          .sort((a, b) => a.seq - b.seq)
      )
    }
  })

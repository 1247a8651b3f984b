/**
 * The Trigger Inbox API as a service: Zapier subscribes to one trigger (an app's `READ` action) on one
 * connection of the end user and buffers its events in an inbox; the partner leases messages, processes them and
 * acknowledges them (at-least-once: a leased message that is not acknowledged comes back after its lease).
 *
 * This is the low-level contract (one method per endpoint). `TriggerInbox` builds the consumer on it: an Effect
 * `Stream` of messages acknowledged when their processing succeeds.
 *
 * @example
 * ```ts
 * import { Domain, TriggerInboxes } from "@effect-zapier/core"
 * import { Effect } from "effect"
 *
 * const user = Domain.EndUser.make({ userId: "u-42", tenantId: "acme" })
 * const app = Domain.AppId.make("slack")
 * const connection = Domain.ConnectionId.make("10002")
 * const trigger = Domain.ActionKey.make("new_message")
 *
 * const program = Effect.gen(function* () {
 *   const inboxes = yield* TriggerInboxes.TriggerInboxes
 *   const inbox = yield* inboxes.ensure(user, {
 *     key: Domain.InboxKey.make("new-messages-general"),
 *     subscription: Domain.Subscription.make({ app, action: trigger, inputs: { channel: "C1" }, connection })
 *   })
 *   const lease = yield* inboxes.lease(user, inbox.id, { limit: 10, leaseSeconds: 60 })
 *   if (lease.leaseId) yield* inboxes.ack(user, inbox.id, lease.leaseId, lease.messages.map((m) => m.id))
 * })
 * ```
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import type {
  EndUser,
  Inbox,
  InboxId,
  InboxKey,
  InboxMessage,
  InboxStatus,
  Lease,
  LeaseId,
  MessageId,
  MessageStatus,
  Subscription
} from "./Domain.js"
import type { InboxKeyConflict, InboxNotActive, InboxPaused, LeaseExpired, RequestError } from "./Errors.js"

/**
 * What `ensure` needs: the partner's key of the inbox (≤ 100 characters, unique per end user) and what it
 * subscribes to; optionally a URL Zapier posts a wake-up hint to when messages arrive.
 * @since 0.1.0
 */
export interface EnsureInbox {
  readonly key: InboxKey
  readonly subscription: Subscription
  readonly notificationUrl?: string | undefined
}

/**
 * Filters of `list`.
 * @since 0.1.0
 */
export interface ListOptions {
  readonly key?: InboxKey | undefined
  readonly status?: InboxStatus | undefined
}

/**
 * Options of one lease: how long the messages stay leased (1–3600 s, default 300) and how many at most
 * (1–100, default 10).
 * @since 0.1.0
 */
export interface LeaseOptions {
  readonly leaseSeconds?: number | undefined
  readonly limit?: number | undefined
}

/**
 * The limits of a lease, as Zapier documents them.
 * @since 0.1.0
 */
export const leaseLimits = {
  minSeconds: 1,
  maxSeconds: 3600,
  defaultSeconds: 300,
  minLimit: 1,
  maxLimit: 100,
  defaultLimit: 10
} as const

/**
 * One event of an inbox's event stream: `MessagesAvailable` for each batch of newly available messages (it
 * carries no content: lease them), `KeepAlive` for the server's heartbeats.
 * @since 0.1.0
 */
export type InboxEvent = { readonly _tag: "MessagesAvailable" } | { readonly _tag: "KeepAlive" }

/** @since 0.1.0 */
export interface Service {
  /**
   * Creates the inbox, or returns the existing one with the same key (idempotent by key). Fails with
   * `InboxKeyConflict` when the key exists with a different subscription.
   */
  readonly ensure: (user: EndUser, request: EnsureInbox) => Effect.Effect<Inbox, RequestError | InboxKeyConflict>
  readonly get: (user: EndUser, inbox: InboxId) => Effect.Effect<Inbox, RequestError>
  /** The user's inboxes (every page), optionally filtered. */
  readonly list: (user: EndUser, options?: ListOptions) => Effect.Effect<ReadonlyArray<Inbox>, RequestError>
  /** Changes the inbox's notification URL (`null` removes it); nothing else of an inbox can change. */
  readonly update: (
    user: EndUser,
    inbox: InboxId,
    change: { readonly notificationUrl: string | null }
  ) => Effect.Effect<Inbox, RequestError>
  readonly delete: (user: EndUser, inbox: InboxId) => Effect.Effect<void, RequestError>
  readonly pause: (user: EndUser, inbox: InboxId) => Effect.Effect<Inbox, RequestError>
  readonly resume: (user: EndUser, inbox: InboxId) => Effect.Effect<Inbox, RequestError>
  /**
   * Leases up to `limit` available messages for `leaseSeconds`. A lease with no messages has no `leaseId`.
   * Fails with `InboxPaused` when the inbox is paused and drained, `InboxNotActive` when it is not yet (or no
   * longer) leasable.
   */
  readonly lease: (
    user: EndUser,
    inbox: InboxId,
    options?: LeaseOptions
  ) => Effect.Effect<Lease, RequestError | InboxPaused | InboxNotActive>
  /** Acknowledges messages of a lease (all of them when `messages` is omitted): they are done. */
  readonly ack: (
    user: EndUser,
    inbox: InboxId,
    lease: LeaseId,
    messages?: ReadonlyArray<MessageId>
  ) => Effect.Effect<void, RequestError | LeaseExpired>
  /**
   * Gives messages of a lease back before it expires (all of them when `messages` is omitted), so they can be
   * leased again at once. A release does not refund the lease count: a message released too often is
   * quarantined.
   */
  readonly release: (
    user: EndUser,
    inbox: InboxId,
    lease: LeaseId,
    messages?: ReadonlyArray<MessageId>
  ) => Effect.Effect<void, RequestError | LeaseExpired>
  /** The inbox's messages, optionally of one status (e.g. `quarantined`). */
  readonly messages: (
    user: EndUser,
    inbox: InboxId,
    options?: { readonly status?: MessageStatus | undefined }
  ) => Effect.Effect<ReadonlyArray<InboxMessage>, RequestError>
  /**
   * The inbox's Server-Sent Events: one `MessagesAvailable` per batch of newly available messages, `KeepAlive`s
   * in between. The stream ends when the server closes it (it does when the access token expires): open it
   * again. Malformed frames are skipped, never a failure.
   */
  readonly events: (user: EndUser, inbox: InboxId) => Stream.Stream<InboxEvent, RequestError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class TriggerInboxes extends Context.Tag("@effect-zapier/core/TriggerInboxes")<TriggerInboxes, Service>() {}

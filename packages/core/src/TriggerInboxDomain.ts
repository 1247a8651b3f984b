/**
 * The domain of Trigger Inboxes: their ids and keys, statuses and paused reasons, the subscription, the inbox, its
 * messages and leases, and the connection-expiry notice. `Domain` re-exports them all, so `Domain.Inbox` and
 * `TriggerInboxDomain.Inbox` are the same schema.
 *
 * @example
 * ```ts
 * import { Domain } from "@effect-zapier/core"
 *
 * const key = Domain.InboxKey.make("new-orders")
 * const needsReconnect = Domain.isAuthenticationReason("authentication_access_revoked")
 * ```
 *
 * @since 0.2.0
 */
import * as Schema from "effect/Schema"
import { ActionKey, AppId, ConnectionId } from "./Identifiers.js"

/**
 * The id Zapier gives a Trigger Inbox.
 * @since 0.1.0
 * @category triggers
 */
export const InboxId = Schema.NonEmptyTrimmedString.pipe(Schema.brand("InboxId"))
/** @since 0.1.0 */
export type InboxId = typeof InboxId.Type

/**
 * The partner's key of an inbox: unique per end user, at most 100 characters, immutable. Ensuring an inbox by the
 * same key again returns the same inbox (with a different subscription it is a conflict).
 * @since 0.1.0
 * @category triggers
 */
export const InboxKey = Schema.NonEmptyTrimmedString.pipe(Schema.maxLength(100), Schema.brand("InboxKey"))
/** @since 0.1.0 */
export type InboxKey = typeof InboxKey.Type

/**
 * The id of one message (one trigger event) of an inbox.
 * @since 0.1.0
 * @category triggers
 */
export const MessageId = Schema.NonEmptyTrimmedString.pipe(Schema.brand("MessageId"))
/** @since 0.1.0 */
export type MessageId = typeof MessageId.Type

/**
 * The id of one lease: what an ack or a release names, with the message ids.
 * @since 0.1.0
 * @category triggers
 */
export const LeaseId = Schema.NonEmptyTrimmedString.pipe(Schema.brand("LeaseId"))
/** @since 0.1.0 */
export type LeaseId = typeof LeaseId.Type

/**
 * An inbox's status. Only an `active` inbox (or a `paused` one that still holds messages) can be leased from;
 * a new inbox is `initializing` until Zapier has subscribed to the trigger. `unknown` stands for a status this
 * library does not know (the live client logs the value once).
 * @since 0.1.0
 * @category triggers
 */
export const InboxStatus = Schema.Literal(
  "initializing",
  "active",
  "paused",
  "deleting",
  "initialization_failure",
  "unknown"
)
/** @since 0.1.0 */
export type InboxStatus = typeof InboxStatus.Type

/**
 * Why an inbox is paused. `authentication` and `authentication_access_revoked` mean the user's connection must be
 * re-authorized through Connect UI; `user` means someone paused it (resume it); `unknown` also stands for a
 * reason this library does not know.
 * @since 0.1.0
 * @category triggers
 */
export const PausedReason = Schema.Literal(
  "user",
  "authentication",
  "authentication_access_revoked",
  "partner_revoked",
  "subscribe_failed",
  "migrate_failed",
  "abandoned",
  "unknown",
  "upstream_failures"
)
/** @since 0.1.0 */
export type PausedReason = typeof PausedReason.Type

/**
 * True for the paused reasons that a reconnect through Connect UI resolves.
 * @since 0.1.0
 * @category triggers
 */
export const isAuthenticationReason = (reason: PausedReason): boolean =>
  reason === "authentication" || reason === "authentication_access_revoked"

/**
 * A message's status. `quarantined`: leased too many times without an ack; Zapier stops delivering it.
 * @since 0.1.0
 * @category triggers
 */
export const MessageStatus = Schema.Literal("available", "leased", "acked", "quarantined", "unknown")
/** @since 0.1.0 */
export type MessageStatus = typeof MessageStatus.Type

/**
 * What an inbox subscribes to: one trigger (an app's `READ` action, by key) on one connection of the user
 * (`null` for apps without authentication), with the trigger's inputs.
 * @since 0.1.0
 * @category triggers
 */
export class Subscription extends Schema.Class<Subscription>("@effect-zapier/core/Subscription")({
  app: AppId,
  action: ActionKey,
  inputs: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  connection: Schema.NullOr(ConnectionId)
}) {}

/**
 * A Trigger Inbox: Zapier subscribes to the trigger and buffers its events here until the partner leases and
 * acknowledges them.
 * @since 0.1.0
 * @category triggers
 */
export class Inbox extends Schema.Class<Inbox>("@effect-zapier/core/Inbox")({
  id: InboxId,
  key: Schema.optional(InboxKey),
  status: InboxStatus,
  pausedReason: Schema.optional(PausedReason),
  notificationUrl: Schema.optional(Schema.NullOr(Schema.String)),
  subscription: Subscription
}) {}

/**
 * One message of an inbox: one trigger event. `payload` is whatever the trigger produced (any JSON); decode it
 * with your own Schema. `leaseCount` counts the leases so far (a release does not refund one);
 * `possibleDuplicate` is Zapier's hint that the same data may have arrived before.
 * @since 0.1.0
 * @category triggers
 */
export class InboxMessage extends Schema.Class<InboxMessage>("@effect-zapier/core/InboxMessage")({
  id: MessageId,
  inbox: InboxId,
  createdAt: Schema.DateTimeUtcFromSelf,
  status: MessageStatus,
  leaseCount: Schema.Number,
  errorMessage: Schema.optional(Schema.String),
  possibleDuplicate: Schema.Boolean,
  payload: Schema.Unknown
}) {}

/**
 * What one lease returned: the lease (absent when nothing was available), until when it holds, the messages,
 * and the inbox's status at that moment.
 * @since 0.1.0
 * @category triggers
 */
export class Lease extends Schema.Class<Lease>("@effect-zapier/core/Lease")({
  leaseId: Schema.optional(LeaseId),
  leasedUntil: Schema.optional(Schema.DateTimeUtcFromSelf),
  messages: Schema.Array(InboxMessage),
  inboxStatus: InboxStatus,
  pausedReason: Schema.optional(PausedReason)
}) {}

/**
 * A connection-expiry notice from Zapier's connection webhooks (`connection.expiry_scheduled`), verified:
 * the connection will stop working at `expiresAt` unless the user reconnects it.
 * @since 0.1.0
 * @category triggers
 */
export class ConnectionExpiring extends Schema.Class<ConnectionExpiring>("@effect-zapier/core/ConnectionExpiring")({
  webhookId: Schema.String,
  connection: ConnectionId,
  expiresAt: Schema.DateTimeUtcFromSelf
}) {}

/**
 * The Trigger Inbox API's JSON on the wire (`snake_case`) and the connection webhooks', as Zapier's Trigger Inbox
 * guides, its API reference and its SDK describe them. Every schema ignores unknown fields. What is inferred
 * rather than documented is said at the schema:
 *
 * - a list answer may be `{results: [...]}` (the documented lease shape, so likely the list shape too), `{data:
 *   [...]}` or a bare array: all three are accepted;
 * - the messages of a lease are decoded one by one (see `HttpTriggerInboxes`), so one malformed message never
 *   hides the others;
 * - statuses and paused reasons this library does not know decode (as strings) and map to `unknown`.
 *
 * @example
 * ```ts
 * import { InboxWire } from "@effect-zapier/http"
 * import { Schema } from "effect"
 *
 * const lease = Schema.decodeUnknownSync(InboxWire.LeaseResponse)({
 *   lease_id: "l-1",
 *   leased_until: "2026-11-30T00:05:00Z",
 *   results: [],
 *   inbox_attributes: { status: "active", paused_reason: null }
 * })
 * ```
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import { Id } from "./Wire.js"

const OptionalString = Schema.optional(Schema.NullOr(Schema.String))

/**
 * What an inbox subscribes to. `app_key` accepts the versionless key, the slug or `@latest` (documented); this
 * library sends the app id it uses everywhere else.
 * @since 0.1.0
 */
export const Subscription = Schema.Struct({
  app_key: Schema.String,
  action_key: Schema.String,
  inputs: Schema.optional(Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.Unknown }))),
  connection_id: Schema.optional(Schema.NullOr(Id))
})

/**
 * One inbox.
 * @since 0.1.0
 */
export const Inbox = Schema.Struct({
  id: Id,
  key: OptionalString,
  status: Schema.String,
  paused_reason: OptionalString,
  notification_url: OptionalString,
  subscription: Subscription
})
/** @since 0.1.0 */
export type Inbox = typeof Inbox.Type

/**
 * A list answer: `{results}`, `{data}` or a bare array, with `count`/`next` when given.
 * @since 0.1.0
 */
export const ListOf = <A, I>(item: Schema.Schema<A, I>) =>
  Schema.Union(
    Schema.Struct({
      results: Schema.Array(item),
      count: Schema.optional(Schema.NullOr(Schema.Number)),
      next: OptionalString
    }),
    Schema.transform(
      Schema.Struct({
        data: Schema.Array(item),
        count: Schema.optional(Schema.NullOr(Schema.Number)),
        next: OptionalString
      }),
      Schema.Struct({
        results: Schema.Array(Schema.typeSchema(item)),
        count: Schema.optional(Schema.NullOr(Schema.Number)),
        next: OptionalString
      }),
      {
        strict: false,
        decode: (page) => ({ results: page.data, count: page.count, next: page.next }),
        encode: (page) => ({ data: page.results, count: page.count, next: page.next })
      }
    ),
    Schema.transform(Schema.Array(item), Schema.Struct({ results: Schema.Array(Schema.typeSchema(item)) }), {
      strict: false,
      decode: (results) => ({ results }),
      encode: (page) => page.results
    })
  )

/** @since 0.1.0 */
export const InboxList = ListOf(Inbox)

/**
 * A message's attributes. `possible_duplicate_data` is read as a boolean hint (anything else: false).
 * @since 0.1.0
 */
export const MessageAttributes = Schema.Struct({
  lease_count: Schema.optional(Schema.NullOr(Schema.Number)),
  error_message: OptionalString,
  possible_duplicate_data: Schema.optional(Schema.Unknown)
})

/**
 * One message. `payload` is any JSON (decoded by the consumer's own Schema, if it gives one).
 * @since 0.1.0
 */
export const Message = Schema.Struct({
  id: Id,
  created_at: Schema.String,
  status: Schema.String,
  message_attributes: Schema.optional(Schema.NullOr(MessageAttributes)),
  payload: Schema.optional(Schema.Unknown)
})
/** @since 0.1.0 */
export type Message = typeof Message.Type

/**
 * The answer of `POST …/messages/lease`. `results` is kept raw here: each message is decoded on its own.
 * @since 0.1.0
 */
export const LeaseResponse = Schema.Struct({
  lease_id: Schema.optional(Schema.NullOr(Id)),
  leased_until: OptionalString,
  results: Schema.Array(Schema.Unknown),
  inbox_attributes: Schema.optional(
    Schema.NullOr(Schema.Struct({ status: OptionalString, paused_reason: OptionalString }))
  )
})

/**
 * A list of messages, kept raw like a lease's.
 * @since 0.1.0
 */
export const MessageList = ListOf(Schema.Unknown)

/**
 * A refusal with a top-level `detail` (the lease's 409 when the inbox is paused and drained), optionally a
 * `code`.
 * @since 0.1.0
 */
export const Detail = Schema.Struct({ detail: Schema.String, code: OptionalString })

/**
 * The body of `PUT /inboxes` (ensure) and `POST /inboxes` (create).
 * @since 0.1.0
 */
export const EnsureBody = Schema.Struct({
  key: Schema.String,
  notification_url: Schema.optional(Schema.String),
  subscription: Subscription
})

// ---------------------------------------------------------------------------------------------------------------
// Connection webhooks
// ---------------------------------------------------------------------------------------------------------------

/**
 * One connection-webhook subscription (`POST|GET /connections/v1/webhooks`). `secret` (`whsec_…`) is only in
 * the creation's answer, once; it is `Redacted` as soon as it is decoded.
 * @since 0.1.0
 */
export const WebhookSubscription = Schema.Struct({
  id: Id,
  event_type: Schema.String,
  callback_url: Schema.String,
  is_active: Schema.optional(Schema.NullOr(Schema.Boolean)),
  secret: Schema.optional(Schema.NullOr(Schema.Redacted(Schema.String)))
})

/** @since 0.1.0 */
export const WebhookSubscriptionList = ListOf(WebhookSubscription)

/**
 * A connection-webhook event. The connection's id is read from `data.id`, `data.connection_id` or
 * `data.authentication_id` (the docs show `data` without naming the field: inferred). `data.title` may hold
 * personal data and is never kept.
 * @since 0.1.0
 */
export const ConnectionEvent = Schema.Struct({
  type: Schema.String,
  expires_at: OptionalString,
  data: Schema.optional(
    Schema.NullOr(
      Schema.Struct({
        id: Schema.optional(Schema.NullOr(Id)),
        connection_id: Schema.optional(Schema.NullOr(Id)),
        authentication_id: Schema.optional(Schema.NullOr(Id))
      })
    )
  )
})

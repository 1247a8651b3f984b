/**
 * The domain of embedded Zapier actions: branded identifiers, end users, connections, actions, connect links,
 * access tokens and the states of an action run. Everything here is a `Schema`, so values that come from the
 * outside (HTTP bodies, callbacks, stored rows) are decoded, never trusted.
 *
 * @example
 * ```ts
 * import { Domain } from "@effect-zapier/core"
 *
 * const user = Domain.EndUser.make({ userId: "u-42", tenantId: "acme" })
 * const app = Domain.AppId.make("5f6e2f0e-slack")
 * ```
 *
 * @since 0.1.0
 */
import { NodeInspectSymbol } from "effect/Inspectable"
import * as Schema from "effect/Schema"
import { ActionId, ActionKey, ActionRunId, AppId, ConnectionId } from "./Identifiers.js"

/**
 * The branded identifiers (`AppId`, `ConnectionId`, `ActionKey`, `ActionId`, `ActionRunId`), defined in
 * `Identifiers`.
 * @since 0.1.0
 * @category ids
 */
export * from "./Identifiers.js"

/**
 * The Trigger Inbox domain (`Inbox`, `InboxMessage`, `Lease`, `Subscription`, their ids and statuses, and
 * `ConnectionExpiring`), defined in `TriggerInboxDomain`.
 * @since 0.1.0
 * @category triggers
 */
export * from "./TriggerInboxDomain.js"

/**
 * A string that is trimmed when decoded and must not be empty.
 * @since 0.1.0
 */
export const NonEmptyTrimmed = Schema.compose(Schema.Trim, Schema.NonEmptyTrimmedString)

/**
 * One end user of the partner: a user of a tenant. Zapier provisions one opaque Zapier user per pair.
 * Both ids are trimmed when decoded and must not be empty.
 *
 * @example
 * ```ts
 * import { Domain } from "@effect-zapier/core"
 *
 * const user = Domain.EndUser.make({ userId: "u-42", tenantId: "acme" })
 * ```
 * @since 0.1.0
 * @category models
 */
export class EndUser extends Schema.Class<EndUser>("@effect-zapier/core/EndUser")({
  userId: NonEmptyTrimmed,
  tenantId: NonEmptyTrimmed
}) {
  /** A stable key for maps and caches, unambiguous whatever the ids contain. */
  get key(): string {
    return JSON.stringify([this.tenantId, this.userId])
  }
}

/**
 * Decodes an `EndUser` from unknown input (trimming both ids).
 * @since 0.1.0
 */
export const decodeEndUser = Schema.decodeUnknown(EndUser)

/**
 * The kinds of action Zapier knows.
 * @since 0.1.0
 * @category models
 */
export const ActionType = Schema.Literal(
  "READ",
  "READ_BULK",
  "SEARCH",
  "SEARCH_OR_WRITE",
  "SEARCH_AND_WRITE",
  "WRITE",
  "FILTER"
)
/** @since 0.1.0 */
export type ActionType = typeof ActionType.Type

/**
 * A user's connection to an app. Only a connection with `isExpired: false` can run actions. `expiring` is set by
 * `EmbeddedActions.ensureConnection` when Zapier announced the connection's expiry (a connection webhook recorded
 * in the `ConnectionStore`): it still works until `expiring.expiresAt`; offer the user a reconnect before then.
 * @since 0.1.0
 * @category models
 */
export class Connection extends Schema.Class<Connection>("@effect-zapier/core/Connection")({
  id: ConnectionId,
  app: AppId,
  title: Schema.optional(Schema.String),
  isExpired: Schema.Boolean,
  expiring: Schema.optional(
    Schema.suspend((): Schema.Schema<ConnectionExpiry, typeof ConnectionExpiry.Encoded> => ConnectionExpiry)
  )
}) {}

/**
 * An action of an app, as one lookup returned it (`id` is fresh for this lookup only).
 * @since 0.1.0
 * @category models
 */
export class Action extends Schema.Class<Action>("@effect-zapier/core/Action")({
  id: ActionId,
  key: ActionKey,
  app: AppId,
  actionType: ActionType,
  title: Schema.String,
  description: Schema.optional(Schema.String),
  isInstant: Schema.Boolean
}) {}

/**
 * A Connect UI link for the end user's browser. It embeds a single-use connect token and expires with it: whoever
 * has the URL can attach their own account to this user, so it is printed without it everywhere (`String`,
 * `JSON.stringify`, `util.inspect`, loggers); read `url` only to hand it to that user's browser.
 * `reconnect` is set when the link re-authorizes an expired connection in place; `state` is the unguessable
 * value that ties the callback to this link.
 * @since 0.1.0
 * @category models
 */
export class ConnectLink extends Schema.Class<ConnectLink>("@effect-zapier/core/ConnectLink")({
  url: Schema.String,
  app: AppId,
  expiresAt: Schema.DateTimeUtc,
  reconnect: Schema.optional(ConnectionId),
  state: Schema.optional(Schema.String)
}) {
  /**
   * The link without its token, for logs.
   * @since 0.1.0
   */
  override toString(): string {
    return `ConnectLink(${this.app}${this.reconnect ? `, reconnect ${this.reconnect}` : ""})`
  }
  /**
   * The link without its token (`url` is `"<redacted>"`), for JSON logs.
   * @since 0.1.0
   */
  toJSON(): unknown {
    return {
      _id: "ConnectLink",
      app: this.app,
      expiresAt: this.expiresAt,
      reconnect: this.reconnect,
      url: "<redacted>"
    }
  }
  /**
   * The link without its token for `util.inspect`, `console.log` and Effect's loggers (`Logger.pretty`, an
   * `Exit` or `Cause` printed): the same as {@link ConnectLink.toJSON}. Only `url`, read explicitly, holds the token.
   * @since 0.1.0
   */
  [NodeInspectSymbol](): unknown {
    return this.toJSON()
  }
}

/**
 * A connection Zapier will expire at `expiresAt` (its expiry was announced by a connection webhook): usable until
 * then. `reconnect` is a reconnect link, minted only when the caller asked for one
 * (`ensureConnection(user, app, { reconnectIfExpiring: true })`: one connect token).
 * @since 0.2.0
 * @category models
 */
export class ConnectionExpiry extends Schema.Class<ConnectionExpiry>("@effect-zapier/core/ConnectionExpiry")({
  expiresAt: Schema.DateTimeUtcFromSelf,
  reconnect: Schema.optional(ConnectLink)
}) {}

/**
 * A per-user access token. The value is `Redacted`: it prints as `<redacted>` in logs, errors and spans.
 * @since 0.1.0
 * @category models
 */
export class AccessToken extends Schema.Class<AccessToken>("@effect-zapier/core/AccessToken")({
  value: Schema.RedactedFromSelf(Schema.String),
  expiresAt: Schema.DateTimeUtcFromSelf,
  scope: Schema.String
}) {}

/**
 * A connect token: single use, short lived, the only token that may reach a browser.
 * @since 0.1.0
 * @category models
 */
export class ConnectToken extends Schema.Class<ConnectToken>("@effect-zapier/core/ConnectToken")({
  value: Schema.RedactedFromSelf(Schema.String),
  expiresAt: Schema.DateTimeUtcFromSelf,
  app: AppId
}) {}

/**
 * Zapier's run error codes. `authentication` means the connection must be reconnected; `throttled` and
 * `system_throttled` come with a `delay`.
 * @since 0.1.0
 */
export const RunErrorCode = Schema.Literal(
  "user",
  "authentication",
  "partner",
  "system",
  "throttled",
  "system_throttled",
  "hydration"
)

/**
 * One error of a failed run, as Zapier reported it. `code` keeps unknown values as they came.
 * @since 0.1.0
 * @category models
 */
export class RunError extends Schema.Class<RunError>("@effect-zapier/core/RunError")({
  code: Schema.String,
  title: Schema.String,
  detail: Schema.optional(Schema.String),
  delay: Schema.optional(Schema.DurationFromMillis)
}) {}

/**
 * A run that has not finished. `status` is Zapier's word for it (`waiting`, `queued`, `running`, or a value this
 * library does not know yet); `retryAfter` is a server hint that stretches the next poll.
 * @since 0.1.0
 * @category run states
 */
export class RunPending extends Schema.TaggedClass<RunPending>("@effect-zapier/core/RunPending")("RunPending", {
  runId: ActionRunId,
  status: Schema.String,
  retryAfter: Schema.optional(Schema.DurationFromMillis),
  /** True when Zapier held the read until the run ended or its wait passed (a long-poll read): read again at once. */
  held: Schema.optional(Schema.Boolean)
}) {}

/**
 * A run that succeeded. `results` may be empty even for a successful run.
 * @since 0.1.0
 * @category run states
 */
export class RunSucceeded extends Schema.TaggedClass<RunSucceeded>("@effect-zapier/core/RunSucceeded")("RunSucceeded", {
  runId: ActionRunId,
  results: Schema.Array(Schema.Unknown)
}) {}

/**
 * A run that ended in `error`.
 * @since 0.1.0
 * @category run states
 */
export class RunFailed extends Schema.TaggedClass<RunFailed>("@effect-zapier/core/RunFailed")("RunFailed", {
  runId: ActionRunId,
  errors: Schema.Array(RunError)
}) {}

/**
 * @since 0.1.0
 * @category run states
 */
export const RunState = Schema.Union(RunPending, RunSucceeded, RunFailed)
/**
 * @since 0.1.0
 * @category run states
 */
export type RunState = typeof RunState.Type

/**
 * What `EmbeddedActions.await` and `run` return.
 * @since 0.1.0
 * @category models
 */
export class RunResult extends Schema.Class<RunResult>("@effect-zapier/core/RunResult")({
  runId: ActionRunId,
  results: Schema.Array(Schema.Unknown)
}) {}

/**
 * A handle to a started run: enough to `await` it later, also from another process.
 * @since 0.1.0
 * @category models
 */
export class RunHandle extends Schema.Class<RunHandle>("@effect-zapier/core/RunHandle")({
  runId: ActionRunId,
  user: EndUser,
  app: AppId,
  action: ActionKey,
  actionId: ActionId,
  connection: Schema.NullOr(ConnectionId),
  /**
   * Set when the run was created with a run callback (see `RunCallbacks`): the routing token its callback URL
   * carries, recorded on the run-event bus. Pass `{ callback: true }` to `await` for such a run. `Redacted`; it
   * encodes to a plain string, so a stored handle must be kept as private as the token.
   */
  callbackToken: Schema.optional(Schema.Redacted(Schema.String))
}) {}

// ---------------------------------------------------------------------------------------------------------------
// Connect callbacks
// ---------------------------------------------------------------------------------------------------------------

/**
 * The query parameter `EmbeddedActions.ensureConnection` adds to the `redirect_uri` of every Connect link it mints:
 * the attempt's unguessable key. The browser brings it back on the callback whatever Zapier does with `state`
 * (Zapier's success redirect is not documented to echo `state`), so a redirect callback proves which attempt it
 * answers. A callback without it (or `state`) cannot close an attempt.
 * @since 0.1.0
 * @category callbacks
 */
export const attemptParameter = "connect_attempt"

const Bounded = (max: number) => Schema.String.pipe(Schema.maxLength(max))
const IdFromStringOrNumber = Schema.Union(
  Schema.String,
  Schema.transform(Schema.Number, Schema.String, { strict: true, decode: (n) => String(n), encode: Number })
).pipe(Schema.compose(Schema.Trim), Schema.compose(ConnectionId))

/**
 * The query of the success redirect: `?authentication_id=12345&service=SlackAPI` (plus `state` if echoed, and the
 * {@link attemptParameter} the library put into the `redirect_uri`).
 * @since 0.1.0
 * @category callbacks
 */
export const RedirectSuccess = Schema.Struct({
  authentication_id: IdFromStringOrNumber,
  service: Schema.optional(Bounded(512)),
  state: Schema.optional(Bounded(512)),
  [attemptParameter]: Schema.optional(Bounded(512))
})

/**
 * The query of the error redirect: `?error=access_denied&error_description=…&state=…` (plus the
 * {@link attemptParameter}). `error_description` is free text from Zapier or the third-party app: never show it as
 * your own words.
 * @since 0.1.0
 * @category callbacks
 */
export const RedirectError = Schema.Struct({
  error: Bounded(256),
  error_description: Schema.optional(Bounded(2048)),
  state: Schema.optional(Bounded(512)),
  [attemptParameter]: Schema.optional(Bounded(512))
})

/**
 * The popup's `postMessage` on success: `{type: "authenticationSuccess", authId}`.
 * @since 0.1.0
 * @category callbacks
 */
export const PopupSuccess = Schema.Struct({
  type: Schema.Literal("authenticationSuccess"),
  authId: IdFromStringOrNumber,
  state: Schema.optional(Bounded(512))
})

/**
 * The popup's `postMessage` on failure: `{type: "authenticationError", error}` (`error`'s shape is unspecified).
 * @since 0.1.0
 * @category callbacks
 */
export const PopupError = Schema.Struct({
  type: Schema.Literal("authenticationError"),
  error: Schema.Unknown,
  state: Schema.optional(Bounded(512))
})

/**
 * How a callback reached the partner: the redirect's query, or the popup's message (posted by the partner's page).
 * @since 0.1.0
 * @category callbacks
 */
export const CallbackVia = Schema.Literal("redirect", "popup")
/**
 * @since 0.1.0
 * @category callbacks
 */
export type CallbackVia = typeof CallbackVia.Type

/**
 * Connect UI approved: the connection id it reported (and `service`/`state` when the redirect carried them).
 * `attempt` is the {@link attemptParameter} of the redirect; `via` says which form the callback had.
 * @since 0.1.0
 * @category callbacks
 */
export const Approved = Schema.TaggedStruct("Approved", {
  connectionId: ConnectionId,
  service: Schema.optional(Schema.String),
  state: Schema.optional(Schema.String),
  attempt: Schema.optional(Schema.String),
  via: Schema.optional(CallbackVia)
})

/**
 * Connect UI reported an error (`access_denied`, `invalid_request`, `server_error`, …). `description` is
 * untrusted free text.
 * @since 0.1.0
 * @category callbacks
 */
export const Denied = Schema.TaggedStruct("Denied", {
  error: Schema.String,
  description: Schema.optional(Schema.String),
  state: Schema.optional(Schema.String),
  attempt: Schema.optional(Schema.String),
  via: Schema.optional(CallbackVia)
})

/**
 * The outcome of Connect UI, normalised from any of the callback forms.
 * @since 0.1.0
 * @category callbacks
 */
export const ConnectOutcome = Schema.Union(Approved, Denied)
/**
 * @since 0.1.0
 * @category callbacks
 */
export type ConnectOutcome = typeof ConnectOutcome.Type

const describeError = (error: unknown): string => {
  if (typeof error === "string" && error.length > 0) return error.slice(0, 256)
  if (error && typeof error === "object" && "error" in error && typeof error.error === "string") {
    return error.error.slice(0, 256)
  }
  return "authentication_error"
}

const optional = <A extends object>(value: A): A =>
  Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as A

/**
 * Any callback Connect UI can deliver (the redirect query or the popup message), decoded into a
 * {@link ConnectOutcome}. Unknown extra keys are ignored; a value over its size limit fails to decode.
 *
 * @example
 * ```ts
 * import { Domain } from "@effect-zapier/core"
 * import { Schema } from "effect"
 *
 * const outcome = Schema.decodeUnknownSync(Domain.ConnectCallback)({ authentication_id: "12345", service: "SlackAPI" })
 * // { _tag: "Approved", connectionId: "12345", service: "SlackAPI", via: "redirect" }
 * ```
 * @since 0.1.0
 * @category callbacks
 */
export const ConnectCallback = Schema.transform(
  Schema.Union(PopupSuccess, PopupError, RedirectError, RedirectSuccess),
  Schema.typeSchema(ConnectOutcome),
  {
    strict: false,
    decode: (cb) =>
      "type" in cb
        ? cb.type === "authenticationSuccess"
          ? optional({ _tag: "Approved" as const, connectionId: cb.authId, state: cb.state, via: "popup" as const })
          : optional({
              _tag: "Denied" as const,
              error: describeError(cb.error),
              state: cb.state,
              via: "popup" as const
            })
        : "error" in cb
          ? optional({
              _tag: "Denied" as const,
              error: cb.error,
              description: cb.error_description,
              state: cb.state,
              attempt: cb[attemptParameter],
              via: "redirect" as const
            })
          : optional({
              _tag: "Approved" as const,
              connectionId: cb.authentication_id,
              service: cb.service,
              state: cb.state,
              attempt: cb[attemptParameter],
              via: "redirect" as const
            }),
    encode: (o) =>
      o.via === "popup"
        ? o._tag === "Approved"
          ? optional({ type: "authenticationSuccess" as const, authId: o.connectionId, state: o.state })
          : optional({ type: "authenticationError" as const, error: o.error, state: o.state })
        : o._tag === "Approved"
          ? optional({
              authentication_id: o.connectionId,
              service: o.service,
              state: o.state,
              [attemptParameter]: o.attempt
            })
          : optional({
              error: o.error,
              error_description: o.description,
              state: o.state,
              [attemptParameter]: o.attempt
            })
  }
)

/**
 * A connection the partner stored for (tenant, user, app), with when it was stored and last verified, and, once
 * Zapier announced its expiry (`ConnectionStore.markExpiring`), when it expires (`expiresAt`; cleared by a
 * reconnect through Connect UI).
 * @since 0.1.0
 * @category storage
 */
export class StoredConnection extends Schema.Class<StoredConnection>("@effect-zapier/core/StoredConnection")({
  connectionId: ConnectionId,
  storedAt: Schema.DateTimeUtcFromSelf,
  verifiedAt: Schema.DateTimeUtcFromSelf,
  expiresAt: Schema.optional(Schema.DateTimeUtcFromSelf)
}) {}

/**
 * An open connect attempt: minted with a link, closed by the callback that completes it (or by expiry).
 * @since 0.1.0
 * @category storage
 */
export class ConnectAttempt extends Schema.Class<ConnectAttempt>("@effect-zapier/core/ConnectAttempt")({
  user: EndUser,
  app: AppId,
  state: Schema.String,
  reconnect: Schema.optional(ConnectionId),
  openedAt: Schema.DateTimeUtcFromSelf,
  expiresAt: Schema.DateTimeUtcFromSelf
}) {}

/**
 * Every public error of effect-zapier: one taxonomy for every layer (in-memory, HTTP, stores).
 * Each is a `Schema.TaggedError` with a short `_tag` to match with `Effect.catchTag`, only data a caller can act
 * on, and a `message` that says what to do. None of them ever holds a token, a JWT, a client secret or a key.
 *
 * @example
 * ```ts
 * import { Domain, EmbeddedActions, Errors } from "@effect-zapier/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const actions = yield* EmbeddedActions.EmbeddedActions
 *   return yield* actions.run({
 *     user: Domain.EndUser.make({ userId: "u-42", tenantId: "acme" }),
 *     app: Domain.AppId.make("slack"),
 *     action: Domain.ActionKey.make("send_channel_message"),
 *     inputs: { channel: "#general", text: "Hi" }
 *   })
 * }).pipe(
 *   Effect.catchTag("ConnectionRequired", (e) => Effect.succeed({ openInBrowser: e.link?.url })),
 *   Effect.catchIf(Errors.isZapierError, (e) => Effect.succeed({ failed: e._tag }))
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"
import {
  ActionId,
  ActionKey,
  ActionRunId,
  ActionType,
  AppId,
  ConnectionId,
  ConnectLink,
  InboxId,
  InboxKey,
  InboxStatus,
  isAuthenticationReason,
  LeaseId,
  MessageId,
  PausedReason,
  RunError
} from "./Domain.js"

/**
 * One entry of Zapier's `errors[]` envelope (`status`, `code`, `title`, `detail`).
 * @since 0.1.0
 */
export class ApiError extends Schema.Class<ApiError>("@effect-zapier/core/ApiError")({
  code: Schema.String,
  title: Schema.String,
  detail: Schema.optional(Schema.String),
  status: Schema.optional(Schema.Number)
}) {}

const describeApiErrors = (errors: ReadonlyArray<ApiError>): string =>
  errors.length === 0 ? "no details" : errors.map((e) => `${e.code}: ${e.detail ?? e.title}`).join("; ")

/**
 * The OAuth endpoint refused the token exchange (`invalid_client`, `invalid_grant`, `invalid_target`, …), or the
 * partner JWT could not be signed. A configuration problem: retrying does not help.
 * @since 0.1.0
 */
export class TokenExchangeFailed extends Schema.TaggedError<TokenExchangeFailed>(
  "@effect-zapier/core/TokenExchangeFailed"
)("TokenExchangeFailed", {
  error: Schema.String,
  description: Schema.optional(Schema.String),
  status: Schema.optional(Schema.Number)
}) {
  override get message(): string {
    return (
      `Zapier refused the token exchange (${this.error}${this.status ? `, HTTP ${this.status}` : ""})` +
      `${this.description ? `: ${this.description}` : ""}. Check the client id/secret, the signing key and its key id, ` +
      `the issuer and the user/tenant claim names registered with Zapier, and the clock of this host.`
    )
  }
}

/**
 * Zapier answered 401/403 even after one token refresh and one retry.
 * @since 0.1.0
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>("@effect-zapier/core/Unauthorized")("Unauthorized", {
  endpoint: Schema.String,
  status: Schema.Number,
  detail: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return (
      `Zapier answered ${this.status} on ${this.endpoint} after a token refresh${this.detail ? ` (${this.detail})` : ""}. ` +
      `Check that the token scope includes what this endpoint needs and that your partner account has access to it.`
    )
  }
}

/**
 * Zapier's rate limit (about 60 requests/min per IP, 150/min per partner) still applied after the retries.
 * @since 0.1.0
 */
export class RateLimited extends Schema.TaggedError<RateLimited>("@effect-zapier/core/RateLimited")("RateLimited", {
  endpoint: Schema.String,
  retryAfter: Schema.DurationFromMillis
}) {
  override get message(): string {
    return `Zapier rate limit hit on ${this.endpoint}; retry after ${Duration.format(this.retryAfter)}.`
  }
}

/**
 * A 5xx, a transport failure or a timeout on a request that is safe to repeat, after the retries.
 * @since 0.1.0
 */
export class ZapierUnavailable extends Schema.TaggedError<ZapierUnavailable>("@effect-zapier/core/ZapierUnavailable")(
  "ZapierUnavailable",
  {
    endpoint: Schema.String,
    reason: Schema.String,
    status: Schema.optional(Schema.Number)
  }
) {
  override get message(): string {
    return `Zapier is unavailable on ${this.endpoint} (${this.reason}${this.status ? `, HTTP ${this.status}` : ""}); it is safe to try again later.`
  }
}

/**
 * A response that could not be decoded. Carries the endpoint and what was wrong, never the body's secrets.
 * @since 0.1.0
 */
export class InvalidResponse extends Schema.TaggedError<InvalidResponse>("@effect-zapier/core/InvalidResponse")(
  "InvalidResponse",
  {
    endpoint: Schema.String,
    reason: Schema.String,
    status: Schema.optional(Schema.Number)
  }
) {
  override get message(): string {
    return `Zapier's response on ${this.endpoint} could not be understood: ${this.reason}. If this persists, Zapier's API may have changed; report it with this message.`
  }
}

/**
 * Zapier answered 400 with its `errors[]` (for example bad inputs or a malformed body).
 * @since 0.1.0
 */
export class BadRequest extends Schema.TaggedError<BadRequest>("@effect-zapier/core/BadRequest")("BadRequest", {
  endpoint: Schema.String,
  errors: Schema.Array(ApiError)
}) {
  override get message(): string {
    return `Zapier rejected the request on ${this.endpoint}: ${describeApiErrors(this.errors)}. Fix the request; repeating it will not help.`
  }
}

/** What to check, by the kind of resource (`resource` starts with it: `action run r-1`, `app slack`, …). */
const notFoundAdvice = (resource: string): string => {
  if (resource.startsWith("action run")) return "Check the run id; Zapier keeps run data for 7 days only."
  if (resource.startsWith("app ")) return "Check the app id: list the apps this user can use to find it."
  if (resource.startsWith("action ")) {
    return "Action ids are valid for one lookup only: resolve the action by its key again before using it."
  }
  if (resource.startsWith("input ")) return "Check the field id against the action's input fields."
  if (resource.startsWith("connection")) return "Check the connection id against the user's connections."
  return "Check the id."
}

/**
 * A resource that does not exist for this user (an unknown run id, an app id, …).
 * @since 0.1.0
 */
export class NotFound extends Schema.TaggedError<NotFound>("@effect-zapier/core/NotFound")("NotFound", {
  endpoint: Schema.String,
  resource: Schema.String
}) {
  override get message(): string {
    return `${this.resource} was not found on ${this.endpoint} for this user. ${notFoundAdvice(this.resource)}`
  }
}

/**
 * The user has no valid connection to the app. `link` is the Connect UI link to send them to (a reconnect link
 * when `reason` is `expired`). `EmbeddedActions.ensureConnection` (and so `start` and `run`) sets it, minting the
 * link as part of that failure, unless it was called with `mintLink: false` (then it is undefined: no connect token
 * was spent). It is also optional so the error can be built or decoded without one (your own code, a test, an error
 * stored before the link was minted); treat a missing link as "call `ensureConnection` when the user connects".
 * @since 0.1.0
 */
export class ConnectionRequired extends Schema.TaggedError<ConnectionRequired>(
  "@effect-zapier/core/ConnectionRequired"
)("ConnectionRequired", {
  app: AppId,
  reason: Schema.Literal("missing", "expired"),
  link: Schema.optional(ConnectLink)
}) {
  override get message(): string {
    return this.reason === "expired"
      ? `The user's connection to ${this.app} has expired; send them to the reconnect link, then complete the connection with the callback.`
      : `The user has no connection to ${this.app}; send them to the Connect link, then complete the connection with the callback.`
  }
}

/**
 * Why a connect callback was refused.
 * @since 0.1.0
 */
export const ConnectFailureReason = Schema.Literal(
  "denied",
  "malformed",
  "no_attempt",
  "attempt_expired",
  "other_user",
  "other_app",
  "replay",
  "state_mismatch",
  "unbound",
  "connection_not_found",
  "connection_expired",
  "timeout"
)
/** @since 0.1.0 */
export type ConnectFailureReason = typeof ConnectFailureReason.Type

const connectAdvice: Record<ConnectFailureReason, string> = {
  denied: "Connect UI reported an error; offer the user a fresh Connect link",
  malformed: "the callback could not be read; offer the user a fresh Connect link",
  no_attempt: "no Connect link was issued for this user and app; start again with ensureConnection",
  attempt_expired: "the Connect link expired before the callback arrived; offer a fresh link",
  other_user: "the callback belongs to another user's Connect link and was refused",
  other_app: "the callback belongs to a Connect link for another app and was refused",
  replay: "this callback was already used; it cannot complete a connection twice",
  state_mismatch: "the callback's state does not match the Connect link; it may be forged and was refused",
  unbound:
    "the callback does not say which Connect link it answers (no state, no connect_attempt parameter); it may be forged and was refused, and no attempt was touched",
  connection_not_found: "the connection id is not among this user's valid connections to the app",
  connection_expired: "the connection is expired; offer the user a reconnect link",
  timeout: "no valid connection appeared before the deadline; offer the user a fresh Connect link"
}

/** Connect UI's documented error codes: only these are quoted in a message (anything else may be forged text). */
const knownConnectErrors = new Set(["invalid_request", "access_denied", "server_error"])

/**
 * Connect UI reported an error, or the callback could not be trusted (see `reason`).
 *
 * `error` and `description` are what the callback said (Zapier's code and its `error_description`). They arrive in a
 * URL anybody can craft, so treat them as untrusted text: the `message` quotes only a documented error code and
 * never the description; show your users a fixed text per `reason` rather than `description`.
 * @since 0.1.0
 */
export class ConnectFailed extends Schema.TaggedError<ConnectFailed>("@effect-zapier/core/ConnectFailed")(
  "ConnectFailed",
  {
    app: AppId,
    reason: ConnectFailureReason,
    error: Schema.optional(Schema.String),
    description: Schema.optional(Schema.String),
    connection: Schema.optional(ConnectionId)
  }
) {
  override get message(): string {
    const detail = this.error !== undefined && knownConnectErrors.has(this.error) ? ` (${this.error})` : ""
    return `Connecting ${this.app} failed: ${connectAdvice[this.reason]}${detail}.`
  }
}

/**
 * The app has no action with that key (and type).
 * @since 0.1.0
 */
export class ActionNotFound extends Schema.TaggedError<ActionNotFound>("@effect-zapier/core/ActionNotFound")(
  "ActionNotFound",
  {
    app: AppId,
    key: ActionKey,
    actionType: Schema.optional(ActionType)
  }
) {
  override get message(): string {
    return `App ${this.app} has no ${this.actionType ?? ""}${this.actionType ? " " : ""}action with key "${this.key}". List the app's actions to find the right key and type.`
  }
}

/**
 * The run ended in `error`. `errors` are Zapier's; a code `authentication` means the user must reconnect.
 * @since 0.1.0
 */
export class ActionRunFailed extends Schema.TaggedError<ActionRunFailed>("@effect-zapier/core/ActionRunFailed")(
  "ActionRunFailed",
  {
    runId: ActionRunId,
    errors: Schema.Array(RunError),
    /**
     * After an `authentication` error the connection is verified again (listed): `expired` or `missing` (no
     * longer listed), or `valid` when Zapier still lists it as valid. Absent when it was not checked.
     */
    connectionStatus: Schema.optional(Schema.Literal("valid", "expired", "missing")),
    /** A Connect link to reconnect, when the caller asked for one (`reconnectLink`) and it is needed. */
    reconnect: Schema.optional(ConnectLink)
  }
) {
  /** True when Zapier says the connection needs to be re-authorized. */
  get needsReconnect(): boolean {
    return this.errors.some((e) => e.code === "authentication")
  }
  override get message(): string {
    const what = this.errors.map((e) => `${e.code}: ${e.detail ?? e.title}`).join("; ") || "no details"
    const checked =
      this.connectionStatus === undefined
        ? ""
        : this.connectionStatus === "valid"
          ? " The connection was checked again and Zapier still lists it as valid; retry, or reconnect if it keeps failing."
          : ` The connection was checked again: it is ${this.connectionStatus === "expired" ? "expired" : "no longer listed"}.`
    const next = !this.needsReconnect
      ? ""
      : this.reconnect !== undefined
        ? " Send the user to the reconnect link it carries, then complete the connection with the callback."
        : " The connection must be reconnected."
    return `Action run ${this.runId} failed (${what}).${checked}${next}`
  }
}

/**
 * The run was still pending at the deadline. Call `await` again with the same run id to resume.
 * @since 0.1.0
 */
export class PollTimeout extends Schema.TaggedError<PollTimeout>("@effect-zapier/core/PollTimeout")("PollTimeout", {
  runId: ActionRunId,
  waited: Schema.DurationFromMillis,
  lastStatus: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return `Action run ${this.runId} was still ${this.lastStatus ?? "pending"} after ${Duration.format(this.waited)}; await it again to resume.`
  }
}

/**
 * The create-run request may or may not have created a run (a timeout after sending, a reset, a 5xx, an
 * unreadable body). It is never replayed blindly: reconcile (for example, ask the user) before running again.
 * @since 0.1.0
 */
export class RunOutcomeUnknown extends Schema.TaggedError<RunOutcomeUnknown>("@effect-zapier/core/RunOutcomeUnknown")(
  "RunOutcomeUnknown",
  {
    endpoint: Schema.String,
    reason: Schema.String,
    app: Schema.optional(AppId),
    action: Schema.optional(ActionKey),
    connection: Schema.optional(Schema.NullOr(ConnectionId)),
    status: Schema.optional(Schema.Number),
    /** The fresh action id the create was sent with (set by durable runs, to reconcile with the target app). */
    actionId: Schema.optional(ActionId),
    /** When the create was about to be sent (set by durable runs). */
    sentAt: Schema.optional(Schema.DateTimeUtc)
  }
) {
  override get message(): string {
    return (
      `Creating the action run may or may not have succeeded (${this.reason}${this.status ? `, HTTP ${this.status}` : ""}). ` +
      `It was not retried to avoid running the action twice; check the target app before running it again.`
    )
  }
}

/**
 * One problem with one input, found by `ActionInputs.validate`:
 * - `missing`: a required field has no value (absent, `""` or `[]`) and no default;
 * - `wrong_type`: the value is not of the field's value type (`expected` names it, `actual` what was given);
 * - `not_a_list`: the field takes a list and got a single value;
 * - `not_a_choice`: the value is not one of the field's choices (`allowed` lists a few of them).
 * `index` is set for an item of a list.
 * @since 0.1.0
 */
export class InputProblem extends Schema.Class<InputProblem>("@effect-zapier/core/InputProblem")({
  field: Schema.String,
  title: Schema.optional(Schema.String),
  kind: Schema.Literal("missing", "wrong_type", "not_a_list", "not_a_choice"),
  expected: Schema.optional(Schema.String),
  actual: Schema.optional(Schema.String),
  index: Schema.optional(Schema.Number),
  allowed: Schema.optional(Schema.Array(Schema.String))
}) {
  /** The problem in words, for a form next to the field or for a log. */
  get text(): string {
    const at = this.index !== undefined ? ` (item ${this.index})` : ""
    if (this.kind === "missing") return "is required"
    if (this.kind === "wrong_type") {
      return `expected ${this.expected ?? "another type"}${at}, got ${this.actual ?? "something else"}`
    }
    if (this.kind === "not_a_list") {
      return `expected a list of ${this.expected ?? "values"}, got ${this.actual ?? "a single value"}`
    }
    const allowed = this.allowed ?? []
    const hint = allowed.length > 0 ? `; choose one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}` : ""
    return `the value${at} is not one of the choices${hint}`
  }
}

/**
 * The inputs of a run do not fit the action's input fields: every problem, by field. Raised before a run is
 * created (a run that fails on bad input still costs the partner a task). Fix the inputs; retrying will not help.
 * @since 0.1.0
 */
export class InvalidInputs extends Schema.TaggedError<InvalidInputs>("@effect-zapier/core/InvalidInputs")(
  "InvalidInputs",
  {
    action: Schema.optional(ActionKey),
    problems: Schema.Array(InputProblem)
  }
) {
  override get message(): string {
    const what = this.problems.map((p) => `${p.field}: ${p.text}`).join("; ")
    return `The inputs${this.action ? ` of ${this.action}` : ""} are invalid (${this.problems.length} problem${this.problems.length === 1 ? "" : "s"}): ${what || "no details"}. Fix them before running the action.`
  }
}

/**
 * Ensuring an inbox failed: an inbox with this key already exists for the user with a different subscription
 * (a key is immutable). Use another key, or delete the old inbox first.
 * @since 0.1.0
 */
export class InboxKeyConflict extends Schema.TaggedError<InboxKeyConflict>("@effect-zapier/core/InboxKeyConflict")(
  "InboxKeyConflict",
  {
    key: InboxKey,
    detail: Schema.optional(Schema.String)
  }
) {
  override get message(): string {
    return `An inbox with key "${this.key}" already exists for this user with a different subscription${this.detail ? ` (${this.detail})` : ""}; an inbox key is immutable: use another key or delete that inbox first.`
  }
}

/**
 * The inbox is paused and has nothing left to lease. `reason` says why; for an authentication reason
 * (`authentication`, `authentication_access_revoked`) `needsReconnect` is true and `app`/`connection` say which
 * connection the user must re-authorize (`link` holds a Connect UI reconnect link when one was minted); once
 * reconnected, resume the inbox.
 * @since 0.1.0
 */
export class InboxPaused extends Schema.TaggedError<InboxPaused>("@effect-zapier/core/InboxPaused")("InboxPaused", {
  inbox: InboxId,
  reason: PausedReason,
  app: Schema.optional(AppId),
  connection: Schema.optional(Schema.NullOr(ConnectionId)),
  link: Schema.optional(ConnectLink)
}) {
  /** True when the user must reconnect through Connect UI before the inbox is resumed. */
  get needsReconnect(): boolean {
    return isAuthenticationReason(this.reason)
  }
  override get message(): string {
    const advice = this.needsReconnect
      ? `the user's connection${this.connection ? ` ${this.connection}` : ""} must be re-authorized through Connect UI${this.link ? " (a reconnect link is attached)" : ""}, then resume the inbox`
      : this.reason === "user"
        ? "it was paused on purpose; resume it to receive events again"
        : "Zapier paused it; check the subscription (trigger, inputs, connection), then resume it"
    return `Inbox ${this.inbox} is paused (${this.reason}): ${advice}.`
  }
}

/**
 * The inbox cannot be leased from yet (or any more): `initializing` (Zapier is still subscribing; wait for
 * `active`), `initialization_failure` (the subscription failed: check the trigger and its inputs) or `deleting`.
 * @since 0.1.0
 */
export class InboxNotActive extends Schema.TaggedError<InboxNotActive>("@effect-zapier/core/InboxNotActive")(
  "InboxNotActive",
  {
    inbox: InboxId,
    status: InboxStatus,
    waited: Schema.optional(Schema.DurationFromMillis)
  }
) {
  override get message(): string {
    const waited = this.waited ? ` after waiting ${Duration.format(this.waited)}` : ""
    switch (this.status) {
      case "initializing":
        return `Inbox ${this.inbox} is still initializing${waited}; Zapier has not finished subscribing to the trigger. Wait longer before leasing.`
      case "initialization_failure":
        return `Inbox ${this.inbox} failed to initialize: Zapier could not subscribe to the trigger. Check the trigger, its inputs and the connection, then ensure a new inbox.`
      case "deleting":
        return `Inbox ${this.inbox} is being deleted; ensure a new one to receive events.`
      default:
        return `Inbox ${this.inbox} is ${this.status}${waited}, not active.`
    }
  }
}

/**
 * An ack or release named a lease that has already expired: Zapier has made those messages available again, and
 * they will be delivered (and handled) once more. Handle messages faster than the lease, or lease for longer.
 * @since 0.1.0
 */
export class LeaseExpired extends Schema.TaggedError<LeaseExpired>("@effect-zapier/core/LeaseExpired")("LeaseExpired", {
  inbox: InboxId,
  lease: LeaseId,
  messages: Schema.Array(MessageId)
}) {
  override get message(): string {
    return `Lease ${this.lease} of inbox ${this.inbox} expired before it was acknowledged (${this.messages.length} message${this.messages.length === 1 ? "" : "s"}); they will be delivered again. Lease for longer than the handler takes.`
  }
}

/**
 * A message's payload did not match the Schema the consumer gave. The message is released (not acked), so it
 * comes back and ends quarantined if it never decodes; `reason` says where it did not match, never the value.
 * @since 0.1.0
 */
export class PayloadDecodeFailed extends Schema.TaggedError<PayloadDecodeFailed>(
  "@effect-zapier/core/PayloadDecodeFailed"
)("PayloadDecodeFailed", {
  inbox: InboxId,
  messageId: MessageId,
  reason: Schema.String
}) {
  override get message(): string {
    return `The payload of message ${this.messageId} of inbox ${this.inbox} does not match the expected schema (${this.reason}); fix the schema or the trigger's inputs.`
  }
}

/**
 * Why a webhook delivery was refused.
 * @since 0.1.0
 */
export const WebhookRejection = Schema.Literal(
  "missing_headers",
  "bad_timestamp",
  "too_old",
  "too_new",
  "bad_signature",
  "too_large",
  "malformed_event",
  "bad_secret"
)
/** @since 0.1.0 */
export type WebhookRejection = typeof WebhookRejection.Type

const webhookAdvice: Record<WebhookRejection, string> = {
  missing_headers: "the webhook-id, webhook-timestamp or webhook-signature header is missing",
  bad_timestamp: "the webhook-timestamp header is not a number of seconds",
  too_old: "the delivery is older than the tolerance (a replay, or a clock far behind)",
  too_new: "the delivery is dated in the future beyond the tolerance (check this host's clock)",
  bad_signature:
    "no signature matches the body under the signing secret; it does not come from Zapier, or the secret is wrong",
  too_large: "the body is larger than the limit",
  malformed_event: "the body is signed but is not an event this library can read",
  bad_secret: "the configured signing secret is not a whsec_ secret (base64 after the prefix)"
}

/**
 * A webhook delivery that was refused before anything was changed (see `reason`). Nothing of the body or the
 * secret is ever quoted.
 * @since 0.1.0
 */
export class WebhookRejected extends Schema.TaggedError<WebhookRejected>("@effect-zapier/core/WebhookRejected")(
  "WebhookRejected",
  { reason: WebhookRejection }
) {
  override get message(): string {
    return `A webhook delivery was refused: ${webhookAdvice[this.reason]}.`
  }
}

/**
 * A connection store (memory, SQL, …) failed.
 * @since 0.1.0
 */
export class StoreUnavailable extends Schema.TaggedError<StoreUnavailable>("@effect-zapier/core/StoreUnavailable")(
  "StoreUnavailable",
  {
    operation: Schema.String,
    reason: Schema.String
  }
) {
  override get message(): string {
    return `The connection store failed during ${this.operation}: ${this.reason}. Check the database and try again.`
  }
}

/**
 * The run-event bus (in memory, Redis, …) failed. An `await` then keeps polling on the plain schedule, and a run
 * callback receiver answers 503 so that Zapier delivers the callback again.
 * @since 0.1.0
 */
export class RunEventsUnavailable extends Schema.TaggedError<RunEventsUnavailable>(
  "@effect-zapier/core/RunEventsUnavailable"
)("RunEventsUnavailable", {
  operation: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `The run-event bus failed during ${this.operation}: ${this.reason}. Runs are still polled; check the bus (Redis) and its connection settings.`
  }
}

/**
 * The union of every public error.
 * @since 0.1.0
 */
export const ZapierError = Schema.Union(
  TokenExchangeFailed,
  Unauthorized,
  RateLimited,
  ZapierUnavailable,
  InvalidResponse,
  BadRequest,
  NotFound,
  ConnectionRequired,
  ConnectFailed,
  ActionNotFound,
  ActionRunFailed,
  PollTimeout,
  RunOutcomeUnknown,
  StoreUnavailable,
  InvalidInputs,
  InboxKeyConflict,
  InboxPaused,
  InboxNotActive,
  LeaseExpired,
  PayloadDecodeFailed,
  RunEventsUnavailable,
  WebhookRejected
)
/** @since 0.1.0 */
export type ZapierError = typeof ZapierError.Type

/**
 * True for any error of this library.
 * @since 0.1.0
 */
export const isZapierError: (u: unknown) => u is ZapierError = Schema.is(ZapierError)

/**
 * The errors any request to Zapier can end with: the common failure set of every service method.
 * @since 0.1.0
 */
export type RequestError =
  | TokenExchangeFailed
  | Unauthorized
  | RateLimited
  | ZapierUnavailable
  | InvalidResponse
  | BadRequest
  | NotFound

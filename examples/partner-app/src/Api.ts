/**
 * The partner backend's HTTP API, schema first (`@effect/platform`'s `HttpApi`): every request body, path
 * parameter and response is a Schema, so a bad request is a 400 that says what was wrong, and the page's calls
 * and the server's handlers cannot drift apart.
 *
 * The end user of every `/api` call except login is the one in the signed session cookie (see `Session.ts`).
 */
import {
  HttpApi,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApiMiddleware,
  HttpApiSchema,
  HttpApiSecurity
} from "@effect/platform"
import { Domain } from "@effect-zapier/core"
import { Context, Schema } from "effect"

// ---------------------------------------------------------------------------------------------------------------
// Session
// ---------------------------------------------------------------------------------------------------------------

/** The session cookie's name. */
export const SESSION_COOKIE = "partner_session"

/** The session cookie, as `HttpApi` security: read by the `Authentication` middleware, set by `login`. */
export const sessionCookie = HttpApiSecurity.apiKey({ in: "cookie", key: SESSION_COOKIE })

/** The end user of the request, from the session cookie. */
export class CurrentUser extends Context.Tag("partner-app/CurrentUser")<CurrentUser, Domain.EndUser>() {}

/** 401: no session, or a cookie that is not ours (bad signature, expired, malformed). */
export class NotLoggedIn extends Schema.TaggedError<NotLoggedIn>()(
  "NotLoggedIn",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 401 })
) {}

/** Resolves `CurrentUser` from the session cookie for every endpoint of the groups it is attached to. */
export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("partner-app/Authentication", {
  failure: NotLoggedIn,
  provides: CurrentUser,
  security: { session: sessionCookie }
}) {}

/** What the demo login form sends: who the end user is. Your real auth replaces this endpoint. */
export const Login = Schema.Struct({
  userId: Domain.NonEmptyTrimmed.pipe(Schema.maxLength(128)),
  tenantId: Domain.NonEmptyTrimmed.pipe(Schema.maxLength(128))
})

/** The logged-in end user. */
export const SessionUser = Schema.Struct({ userId: Schema.String, tenantId: Schema.String })

// ---------------------------------------------------------------------------------------------------------------
// Errors (each with its status)
// ---------------------------------------------------------------------------------------------------------------

/**
 * 409: the user has no valid connection to the app. `connectUrl` is the Connect UI link (it holds a single-use
 * connect token, the only Zapier token a browser may see); `connectOrigin` is the origin whose popup messages the
 * page must trust. `connectUrl` is left out (no token minted) by `GET /api/apps/:app/connection?link=false` and by
 * the fields endpoint, whose 409 only means "connect first".
 */
export class ConnectionNeeded extends Schema.TaggedError<ConnectionNeeded>()(
  "ConnectionNeeded",
  {
    app: Schema.String,
    reason: Schema.Literal("missing", "expired"),
    connectUrl: Schema.optional(Schema.String),
    connectOrigin: Schema.String,
    message: Schema.String
  },
  HttpApiSchema.annotations({ status: 409 })
) {}

/** 400: Connect's callback was refused (denied, replayed, not this user's, …). */
export class ConnectRefused extends Schema.TaggedError<ConnectRefused>()(
  "ConnectRefused",
  { reason: Schema.String, message: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

/** One problem with one input. */
export const InputProblem = Schema.Struct({ field: Schema.String, message: Schema.String })

/** 422: the inputs do not fit the action's fields; nothing was run. */
export class InvalidRunInputs extends Schema.TaggedError<InvalidRunInputs>()(
  "InvalidRunInputs",
  { message: Schema.String, problems: Schema.Array(InputProblem) },
  HttpApiSchema.annotations({ status: 422 })
) {}

/** 404: an unknown app, action or run (or another user's run). */
export class NotFoundError extends Schema.TaggedError<NotFoundError>()(
  "NotFoundError",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/**
 * 502: a dependency failed (Zapier, or a store); `tag` is the library's error tag (`RateLimited`,
 * `RunOutcomeUnknown`, `StoreUnavailable`, …) and `message` says what to do.
 */
export class BackendFailed extends Schema.TaggedError<BackendFailed>()(
  "BackendFailed",
  { tag: Schema.String, message: Schema.String },
  HttpApiSchema.annotations({ status: 502 })
) {}

// ---------------------------------------------------------------------------------------------------------------
// Apps, connections, actions, fields
// ---------------------------------------------------------------------------------------------------------------

export const AppParam = Schema.Struct({ app: Domain.AppId })
export const ActionParams = Schema.Struct({ app: Domain.AppId, action: Domain.ActionKey })

/** An app the partner offers. `requiresAuth: false` apps run without a connection. */
export const AppInfo = Schema.Struct({ id: Schema.String, title: Schema.String, requiresAuth: Schema.Boolean })

/**
 * Zapier announced that the connection expires at `expiresAt` (epoch milliseconds; it works until then):
 * `reconnectUrl` is the Connect UI link that renews it (a single-use connect token, like `ConnectionNeeded`'s),
 * `connectOrigin` the origin whose popup messages the page must trust.
 */
export const ConnectionExpiringInfo = Schema.Struct({
  expiresAt: Schema.Number,
  reconnectUrl: Schema.optional(Schema.String),
  connectOrigin: Schema.String
})

/**
 * `?fresh=true`: the reconnect link last answered was spent without completing (a Connect popup closed or
 * denied), so mint a new one rather than hand out the kept one (see `ReconnectLinks`).
 * `?link=false`: without a valid connection, answer the 409 without `connectUrl` (no connect token is minted), for
 * the page's load and app switch, which only show whether the app is connected; its Connect button asks without it.
 */
export const ConnectionQuery = Schema.Struct({
  fresh: Schema.optional(Schema.BooleanFromString),
  link: Schema.optional(Schema.BooleanFromString)
})

/** The user's connection to an app (the title is shown to its owner only); `expiring` when Zapier announced its end. */
export const ConnectionInfo = Schema.Struct({
  id: Schema.String,
  app: Schema.String,
  title: Schema.optional(Schema.String),
  expiring: Schema.optional(ConnectionExpiringInfo)
})

/** An action of an app, by its stable key. */
export const ActionInfo = Schema.Struct({
  key: Schema.String,
  title: Schema.String,
  actionType: Domain.ActionType,
  description: Schema.optional(Schema.String)
})

/** The inputs of a run: one JSON value per field id. */
export const Inputs = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/** What the page asks the fields for: the action's type and the inputs filled so far. */
export const FieldsRequest = Schema.Struct({ actionType: Domain.ActionType, inputs: Inputs })

/** One field of the form, as the page draws it. */
export const FieldInfo = Schema.Struct({
  kind: Schema.Literal("input", "info"),
  id: Schema.String,
  title: Schema.String,
  description: Schema.optional(Schema.String),
  required: Schema.Boolean,
  /** `string`, `number`, `integer`, `boolean`, `object`, or `any`. */
  type: Schema.String,
  list: Schema.Boolean,
  multiline: Schema.Boolean,
  default: Schema.optional(Schema.String),
  placeholder: Schema.optional(Schema.String),
  /** A change of this field changes the fields: ask for them again. */
  invalidates: Schema.Boolean,
  choices: Schema.optional(Schema.Array(Schema.Struct({ value: Schema.String, label: Schema.String })))
})

// ---------------------------------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------------------------------

/** Run an action for the logged-in user. */
export const StartRun = Schema.Struct({
  app: Domain.AppId,
  action: Domain.ActionKey,
  actionType: Schema.optional(Domain.ActionType),
  inputs: Inputs
})

export const RunParam = Schema.Struct({ id: Domain.ActionRunId })

/**
 * A run as the page sees it. `state` is ours (`pending` until it ends); `status` is Zapier's last word for it
 * (`created`, `waiting`, `queued`, `running`, `success`, `error`).
 */
export const RunView = Schema.Struct({
  runId: Schema.String,
  app: Schema.String,
  action: Schema.String,
  state: Schema.Literal("pending", "succeeded", "failed"),
  status: Schema.String,
  results: Schema.optional(Schema.Array(Schema.Unknown)),
  error: Schema.optional(Schema.Struct({ tag: Schema.String, message: Schema.String })),
  createdAt: Schema.Number,
  updatedAt: Schema.Number
})
export type RunView = typeof RunView.Type

// ---------------------------------------------------------------------------------------------------------------
// Triggers
// ---------------------------------------------------------------------------------------------------------------

/** Watch a trigger (one of the app's `READ` actions) for the logged-in user, with its inputs. */
export const StartWatch = Schema.Struct({ app: Domain.AppId, trigger: Domain.ActionKey, inputs: Inputs })

export const WatchParam = Schema.Struct({ key: Domain.InboxKey })

/** One event a watch received: its payload (any JSON), or why the payload was not stored. */
export const TriggerEventView = Schema.Struct({
  messageId: Schema.String,
  receivedAt: Schema.Number,
  payload: Schema.optional(Schema.Unknown),
  problem: Schema.optional(Schema.String)
})

/**
 * A watch as the page sees it: `state` is `consuming` until the user stops it or its inbox cannot be consumed
 * (then `problem` says why); `running` says whether its consumer runs now; `events` are the newest (at most 50)
 * of `total`.
 */
export const WatchView = Schema.Struct({
  key: Schema.String,
  app: Schema.String,
  trigger: Schema.String,
  inbox: Schema.String,
  state: Schema.Literal("consuming", "stopped"),
  running: Schema.Boolean,
  problem: Schema.optional(Schema.Struct({ tag: Schema.String, message: Schema.String })),
  total: Schema.Number,
  events: Schema.Array(TriggerEventView)
})
export type WatchView = typeof WatchView.Type

/** 409: the user already watches this trigger with other inputs (an inbox's subscription cannot change). */
export class WatchConflict extends Schema.TaggedError<WatchConflict>()(
  "WatchConflict",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 409 })
) {}

// ---------------------------------------------------------------------------------------------------------------
// The API
// ---------------------------------------------------------------------------------------------------------------

export class SessionGroup extends HttpApiGroup.make("session")
  .add(HttpApiEndpoint.post("login", "/api/session").setPayload(Login).addSuccess(SessionUser))
  .add(
    HttpApiEndpoint.get("me", "/api/session").addSuccess(SessionUser).addError(NotLoggedIn).middleware(Authentication)
  )
  .add(HttpApiEndpoint.del("logout", "/api/session").addSuccess(HttpApiSchema.NoContent)) {}

export class AppsGroup extends HttpApiGroup.make("apps")
  .add(HttpApiEndpoint.get("list", "/api/apps").addSuccess(Schema.Array(AppInfo)).addError(BackendFailed))
  .add(
    HttpApiEndpoint.get("connection", "/api/apps/:app/connection")
      .setPath(AppParam)
      .setUrlParams(ConnectionQuery)
      .addSuccess(ConnectionInfo)
      .addError(ConnectionNeeded)
      .addError(NotFoundError)
      .addError(BackendFailed)
  )
  .add(
    HttpApiEndpoint.post("completeConnection", "/api/apps/:app/connection")
      .setPath(AppParam)
      .setPayload(Schema.Unknown)
      .addSuccess(ConnectionInfo)
      .addError(ConnectRefused)
      .addError(NotFoundError)
      .addError(BackendFailed)
  )
  .add(
    HttpApiEndpoint.get("actions", "/api/apps/:app/actions")
      .setPath(AppParam)
      .addSuccess(Schema.Array(ActionInfo))
      .addError(NotFoundError)
      .addError(BackendFailed)
  )
  .add(
    HttpApiEndpoint.post("fields", "/api/apps/:app/actions/:action/fields")
      .setPath(ActionParams)
      .setPayload(FieldsRequest)
      .addSuccess(Schema.Array(FieldInfo))
      .addError(ConnectionNeeded)
      .addError(NotFoundError)
      .addError(BackendFailed)
  )
  .middleware(Authentication) {}

export class RunsGroup extends HttpApiGroup.make("runs")
  .add(
    HttpApiEndpoint.post("start", "/api/runs")
      .setPayload(StartRun)
      .addSuccess(RunView, { status: 202 })
      .addError(ConnectionNeeded)
      .addError(InvalidRunInputs)
      .addError(NotFoundError)
      .addError(BackendFailed)
  )
  .add(
    HttpApiEndpoint.get("get", "/api/runs/:id")
      .setPath(RunParam)
      .addSuccess(RunView)
      .addError(NotFoundError)
      .addError(BackendFailed)
  )
  .middleware(Authentication) {}

export class TriggersGroup extends HttpApiGroup.make("triggers")
  .add(
    HttpApiEndpoint.get("list", "/api/apps/:app/triggers")
      .setPath(AppParam)
      .addSuccess(Schema.Array(ActionInfo))
      .addError(NotFoundError)
      .addError(BackendFailed)
  )
  .add(
    HttpApiEndpoint.post("watch", "/api/watches")
      .setPayload(StartWatch)
      .addSuccess(WatchView)
      .addError(ConnectionNeeded)
      .addError(WatchConflict)
      .addError(InvalidRunInputs)
      .addError(NotFoundError)
      .addError(BackendFailed)
  )
  .add(HttpApiEndpoint.get("watches", "/api/watches").addSuccess(Schema.Array(WatchView)).addError(BackendFailed))
  .add(
    HttpApiEndpoint.del("stop", "/api/watches/:key")
      .setPath(WatchParam)
      .addSuccess(HttpApiSchema.NoContent)
      .addError(NotFoundError)
      .addError(BackendFailed)
  )
  .middleware(Authentication) {}

/** The whole API. */
export class PartnerApi extends HttpApi.make("partner")
  .add(SessionGroup)
  .add(AppsGroup)
  .add(RunsGroup)
  .add(TriggersGroup) {}

/**
 * A standard mapping from the library's errors to HTTP answers, for an app that serves its own routes
 * (`HttpRouter`, `HttpApi`) over `EmbeddedActions`: one `catchAll` instead of a dozen `catchTags`.
 *
 * | error | status | why |
 * |---|---|---|
 * | `InvalidInputs` | 422 | the caller's inputs do not fit the action's fields |
 * | `ActionRunFailed` | 422 | the action ran and the app refused it (its errors say why) |
 * | `ConnectionRequired` | 409 | the user must connect first; the body carries the Connect link when there is one |
 * | `ConnectFailed` | 400 | the Connect callback was refused |
 * | `NotFound`, `ActionNotFound` | 404 | no such app, action, run or connection |
 * | `InboxKeyConflict`, `InboxPaused`, `InboxNotActive`, `LeaseExpired` | 409 | the inbox is not in a state for it |
 * | `RateLimited` | 429 | with `Retry-After` |
 * | `ZapierUnavailable`, `StoreUnavailable`, `RunEventsUnavailable` | 503 | try again later |
 * | `PollTimeout` | 504 | the run is still going: `await` it again |
 * | `RunOutcomeUnknown` | 502 | whether the run was created is unknown: reconcile before retrying |
 * | `TokenExchangeFailed`, `Unauthorized`, `BadRequest`, `InvalidResponse`, `PayloadDecodeFailed` | 502 | Zapier refused the partner's request or answered badly: a configuration or integration problem, not the caller's |
 * | `WebhookRejected` | 401 | a webhook that does not verify |
 *
 * The body is `{ "error": "<tag>", "message": "<the error's message>" }` (plus `connectUrl` for
 * `ConnectionRequired`). The messages name endpoints, ids and reasons, never a token, key or secret.
 *
 * @example
 * ```ts
 * import { Domain, EmbeddedActions } from "@effect-zapier/core"
 * import { ErrorResponse } from "@effect-zapier/http"
 * import { HttpServerResponse } from "@effect/platform"
 * import { Effect } from "effect"
 *
 * const user = Domain.EndUser.make({ userId: "u-42", tenantId: "acme" })
 * const runAction = Effect.gen(function* () {
 *   const actions = yield* EmbeddedActions.EmbeddedActions
 *   const result = yield* actions.run({
 *     user,
 *     app: Domain.AppId.make("slack"),
 *     action: Domain.ActionKey.make("send_channel_message"),
 *     inputs: { channel: "#general", text: "Hi" }
 *   })
 *   return HttpServerResponse.unsafeJson(result.results)
 * }).pipe(Effect.catchAll(ErrorResponse.toResponse))
 * ```
 * @since 0.1.0
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as Errors from "@effect-zapier/core/Errors"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

/**
 * The HTTP status of each error, by tag (a new error of the library fails to compile here until it has one).
 * @since 0.1.0
 */
export const statuses: { readonly [Tag in Errors.ZapierError["_tag"]]: number } = {
  InvalidInputs: 422,
  ActionRunFailed: 422,
  ConnectionRequired: 409,
  ConnectFailed: 400,
  NotFound: 404,
  ActionNotFound: 404,
  InboxKeyConflict: 409,
  InboxPaused: 409,
  InboxNotActive: 409,
  LeaseExpired: 409,
  RateLimited: 429,
  ZapierUnavailable: 503,
  StoreUnavailable: 503,
  RunEventsUnavailable: 503,
  PollTimeout: 504,
  RunOutcomeUnknown: 502,
  TokenExchangeFailed: 502,
  Unauthorized: 502,
  BadRequest: 502,
  InvalidResponse: 502,
  PayloadDecodeFailed: 502,
  WebhookRejected: 401
}

/**
 * The HTTP status for an error of the library.
 *
 * @example
 * ```ts
 * import { Errors } from "@effect-zapier/core"
 * import { ErrorResponse } from "@effect-zapier/http"
 *
 * ErrorResponse.status(new Errors.ZapierUnavailable({ endpoint: "GET /v2/actions", reason: "timeout" })) // 503
 * ```
 * @since 0.1.0
 */
export const status = (error: Errors.ZapierError): number => statuses[error._tag]

/**
 * The JSON answer for an error of the library: its status, `{error, message}` (and `connectUrl` for
 * `ConnectionRequired`), `Retry-After` for `RateLimited`, and `cache-control: no-store`.
 * @since 0.1.0
 */
export const toResponse = (error: Errors.ZapierError): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
  const headers: Record<string, string> = { "cache-control": "no-store" }
  if (error._tag === "RateLimited") {
    headers["retry-after"] = String(Math.max(1, Math.ceil(Duration.toSeconds(error.retryAfter))))
  }
  const body = {
    error: error._tag,
    message: error.message,
    ...(error._tag === "ConnectionRequired" && error.link !== undefined ? { connectUrl: error.link.url } : {})
  }
  return Effect.succeed(HttpServerResponse.unsafeJson(body, { status: status(error), headers }))
}

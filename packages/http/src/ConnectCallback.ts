/**
 * The Connect UI callback, ready to mount: when the partner sends the end user to Connect UI with a
 * `redirect_uri`, Zapier sends the browser back to it with `?authentication_id=…&service=…` (or
 * `?error=…&error_description=…&state=…`). `ConnectCallback.handler` reads that query strictly, resolves the end
 * user from the partner's own request (its session), works out which app the callback is for, completes the
 * connection with core's `EmbeddedActions.completeConnection` (open attempt of this user and app, once, state
 * checked, connection verified in the user's list, then stored), and answers with the partner's own response.
 *
 * A query that is not plainly one callback (bad percent-encoding, a parameter given twice, a value over its size
 * limit or with control characters, both or neither of `authentication_id` and `error`, more than
 * {@link limits}.parameters parameters) is refused as `ConnectFailed { reason: "malformed" }` before anything is
 * looked up or stored. A replayed, forged or cross-user callback is refused by `completeConnection` with the
 * matching reason (`replay`, `state_mismatch`, `other_user`, `no_attempt`, …), again with no stored change.
 *
 * Which app: the partner's declaration wins, checked against everything else the callback says:
 * 1. the handler's `app` option (one route per app), else
 * 2. the `app` query parameter the partner put into its `redirect_uri` (e.g. `…/zapier/callback?app=<id>`), else
 * 3. the `service` Zapier reports, mapped by the handler's `services` option, else
 * 4. the app of the attempt that the callback's `state`, or its `connect_attempt` parameter, names.
 * A disagreement between these (the option vs. the query, the declared app vs. the mapped service) is refused as
 * `other_app`; `completeConnection` refuses an app that is not the attempt's. With none of them, the callback
 * cannot be tied to an app and is refused as `malformed`.
 *
 * Which attempt: `ensureConnection(user, app, { redirectUri })` adds a `connect_attempt` parameter (the attempt's
 * unguessable key) to the `redirect_uri` of the link, and the browser brings it back here, so the callback proves
 * which Connect link it answers even though Zapier's success redirect is not documented to echo `state`. A
 * callback with neither (a link crafted by someone else) is refused as `unbound` and changes nothing.
 *
 * What the app must still do: resolve the user from its own session (never the query), keep the session cookie
 * `SameSite=Lax` or stricter, and show its users a fixed text per refusal reason: `error_description` is
 * untrusted text from the query (the `ConnectFailed` message never quotes it).
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
 * import { Domain } from "@effect-zapier/core"
 * import { ConnectCallback } from "@effect-zapier/http"
 * import { Effect } from "effect"
 *
 * // The partner's own session: here the signed-in user's id, from a cookie its login sets.
 * const endUserOf = (request: HttpServerRequest.HttpServerRequest) =>
 *   Effect.fromNullable(request.cookies.session).pipe(
 *     Effect.map((userId) => Domain.EndUser.make({ userId, tenantId: "acme" }))
 *   )
 *
 * const router = HttpRouter.empty.pipe(
 *   HttpRouter.get(
 *     "/zapier/callback",
 *     ConnectCallback.handler({
 *       resolveUser: endUserOf,
 *       onSuccess: (connection) => HttpServerResponse.redirect(`/integrations?connected=${connection.app}`, { status: 303 }),
 *       onFailure: (error) =>
 *         HttpServerResponse.redirect(
 *           `/integrations?failed=${error._tag === "ConnectFailed" ? error.reason : "unavailable"}`,
 *           { status: 303 }
 *         )
 *     })
 *   )
 * )
 * // Mint links with ensureConnection(user, app, { redirectUri: "https://partner.example/zapier/callback?app=" + app })
 * ```
 * @since 0.1.0
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as ConnectionStore from "@effect-zapier/core/ConnectionStore"
import { AppId, attemptParameter, type Connection, type EndUser } from "@effect-zapier/core/Domain"
import * as EmbeddedActions from "@effect-zapier/core/EmbeddedActions"
import { ConnectFailed, type RequestError, type StoreUnavailable } from "@effect-zapier/core/Errors"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

/**
 * The size limits of the callback query. Zapier's callback is a few short values; anything larger is refused.
 * @since 0.1.0
 */
export const limits = {
  /** The whole query string, in characters (before decoding). */
  query: 8192,
  /** Parameters in the query (the partner's own ones included). */
  parameters: 16,
  /** Decoded length of each known parameter, in characters. */
  values: {
    authentication_id: 128,
    service: 128,
    state: 512,
    [attemptParameter]: 512,
    error: 128,
    error_description: 2048,
    app: 256
  }
} as const

/**
 * The app reported in a refusal when the callback could not be tied to any app (a malformed callback that names
 * none, on a handler without an `app` option).
 * @since 0.1.0
 */
export const unknownApp: AppId = AppId.make("(unknown)")

/**
 * A callback query read strictly: either Connect UI's success (`authentication_id`, `service`?) or its error
 * (`error`, `error_description`?), with `state` when it was brought back, and the partner's `app` parameter.
 * @since 0.1.0
 * @category models
 */
export type CallbackQuery =
  | {
      readonly _tag: "Success"
      readonly authenticationId: string
      readonly service?: string | undefined
      readonly state?: string | undefined
      readonly attempt?: string | undefined
      readonly app?: AppId | undefined
    }
  | {
      readonly _tag: "Error"
      readonly error: string
      /** Free text from Zapier or the third-party app: untrusted, never to be shown as the partner's own words. */
      readonly description?: string | undefined
      readonly state?: string | undefined
      readonly attempt?: string | undefined
      readonly app?: AppId | undefined
    }

/**
 * Why a query was refused as malformed (no value is ever quoted: the query may carry an attacker's input).
 * @since 0.1.0
 * @category models
 */
export interface Malformed {
  readonly problem: string
  /** The partner's `app` parameter, when it alone could be read. */
  readonly app?: AppId | undefined
}

type Known = keyof typeof limits.values

/** Connect UI's own parameters (the partner's app parameter is matched by its configured name). */
const callbackKeys = new Set<string>([
  "authentication_id",
  "service",
  "state",
  attemptParameter,
  "error",
  "error_description"
])

/** Visible ASCII only: ids, codes, service keys, state and app ids have no spaces or control characters. */
const isToken = (value: string): boolean => {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i)
    if (code < 0x21 || code > 0x7e) return false
  }
  return true
}

/** Free text (Zapier's error_description): no control characters other than tab and line breaks. */
const isText = (value: string): boolean => {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i)
    if ((code < 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d) || code === 0x7f) return false
  }
  return true
}

const decodeComponent = (raw: string): Either.Either<string, void> =>
  Either.try({ try: () => decodeURIComponent(raw.replace(/\+/g, " ")), catch: () => undefined })

const decodeAppId = Schema.decodeUnknownEither(AppId)

/**
 * Reads a raw query string (with or without the leading `?`) as Connect UI's callback, strictly: every
 * parameter once, percent-encoding valid, values within {@link limits}, and exactly one of `authentication_id`
 * and `error`. Unknown parameters (the partner's own) are ignored; `appParameter` (default `app`) is read as the
 * partner's declaration of the app.
 *
 * @example
 * ```ts
 * import { ConnectCallback } from "@effect-zapier/http"
 *
 * ConnectCallback.parseQuery("?authentication_id=12345&service=SlackAPI&app=slack")
 * // Either.right({ _tag: "Success", authenticationId: "12345", service: "SlackAPI", app: "slack" })
 * ConnectCallback.parseQuery("?authentication_id=1&authentication_id=2")
 * // Either.left({ problem: "the parameter authentication_id is repeated" })
 * ```
 * @since 0.1.0
 */
export const parseQuery = (query: string, appParameter = "app"): Either.Either<CallbackQuery, Malformed> => {
  const raw = query.startsWith("?") ? query.slice(1) : query
  if (raw.length > limits.query) return Either.left({ problem: `the query is longer than ${limits.query} characters` })
  const pairs = raw.split("&").filter((pair) => pair.length > 0)
  if (pairs.length === 0) return Either.left({ problem: "the query is empty" })
  if (pairs.length > limits.parameters) {
    return Either.left({ problem: `the query has more than ${limits.parameters} parameters` })
  }
  const values = new Map<Known, string>()
  for (const pair of pairs) {
    const at = pair.indexOf("=")
    const name = decodeComponent(at === -1 ? pair : pair.slice(0, at))
    const value = decodeComponent(at === -1 ? "" : pair.slice(at + 1))
    if (Either.isLeft(name) || Either.isLeft(value)) {
      return Either.left({ problem: "the query has an invalid percent-encoding" })
    }
    const key: Known | undefined =
      name.right === appParameter ? "app" : callbackKeys.has(name.right) ? (name.right as Known) : undefined
    if (key === undefined) continue
    const label = key === "app" ? appParameter : key
    if (values.has(key)) return Either.left({ problem: `the parameter ${label} is repeated` })
    const v = value.right
    if (v.length === 0) return Either.left({ problem: `the parameter ${label} is empty` })
    if (v.length > limits.values[key]) {
      return Either.left({ problem: `the parameter ${label} is longer than ${limits.values[key]} characters` })
    }
    if (!(key === "error_description" ? isText : isToken)(v)) {
      return Either.left({ problem: `the parameter ${label} has characters it may not have` })
    }
    values.set(key, v)
  }
  let app: AppId | undefined
  const declared = values.get("app")
  if (declared !== undefined) {
    const decoded = decodeAppId(declared)
    if (Either.isLeft(decoded)) return Either.left({ problem: `the parameter ${appParameter} is not an app id` })
    app = decoded.right
  }
  const malformed = (problem: string): Either.Either<CallbackQuery, Malformed> =>
    Either.left(app !== undefined ? { problem, app } : { problem })
  const authenticationId = values.get("authentication_id")
  const error = values.get("error")
  const state = values.get("state")
  const attempt = values.get(attemptParameter)
  if (authenticationId !== undefined && error !== undefined) {
    return malformed("the query has both authentication_id and error")
  }
  if (authenticationId !== undefined) {
    if (values.has("error_description")) {
      return malformed("the query has error_description without error")
    }
    return Either.right({ _tag: "Success", authenticationId, service: values.get("service"), state, attempt, app })
  }
  if (error !== undefined) {
    return Either.right({ _tag: "Error", error, description: values.get("error_description"), state, attempt, app })
  }
  return malformed("the query has neither authentication_id nor error")
}

/**
 * Everything the partner's `onFailure` may be handed: a refused callback (`ConnectFailed`), a failure talking to
 * Zapier or the store while verifying it, or the partner's own `resolveUser` failure.
 * @since 0.1.0
 * @category models
 */
export type Failure<E> = ConnectFailed | RequestError | StoreUnavailable | E

/**
 * What the handler knew when the callback succeeded.
 * @since 0.1.0
 * @category models
 */
export interface SuccessContext {
  readonly request: HttpServerRequest.HttpServerRequest
  readonly user: EndUser
  readonly app: AppId
}

/**
 * What the handler knew when the callback was refused (`user` and `app` when they had been worked out; `problem`
 * says what was wrong with a malformed query, without quoting it).
 * @since 0.1.0
 * @category models
 */
export interface FailureContext {
  readonly request: HttpServerRequest.HttpServerRequest
  readonly user?: EndUser | undefined
  readonly app?: AppId | undefined
  readonly problem?: string | undefined
}

/**
 * The handler's options.
 * @since 0.1.0
 * @category options
 */
export interface Options<EU, RU, ES, RS, EF, RF> {
  /**
   * The end user this request comes from, from the partner's own session (a cookie, a header): never from the
   * callback's query. A failure (not signed in) is handed to `onFailure`, and nothing is completed.
   */
  readonly resolveUser: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<EndUser, EU, RU>
  /** The response once the connection is verified and stored (typically a redirect back into the app). */
  readonly onSuccess: (
    connection: Connection,
    context: SuccessContext
  ) => Effect.Effect<HttpServerResponse.HttpServerResponse, ES, RS>
  /** The response to any refusal or failure (typically a redirect to a page offering a fresh Connect link). */
  readonly onFailure: (
    error: Failure<EU>,
    context: FailureContext
  ) => Effect.Effect<HttpServerResponse.HttpServerResponse, EF, RF>
  /** The one app this route completes (mount one route per app); any other app the callback names is refused. */
  readonly app?: AppId | undefined
  /**
   * Zapier's service keys (the callback's `service`, e.g. `SlackAPI`) mapped to app ids: a `Map` or a plain object
   * (only its own properties are read, so `service=constructor` or `__proto__` maps to nothing).
   */
  readonly services?: ReadonlyMap<string, AppId> | Readonly<Record<string, AppId>> | undefined
  /** The query parameter that carries the app id the partner put into its `redirect_uri` (default `app`). */
  readonly appParameter?: string | undefined
}

/** Headers of every answer: the callback URL carries the connection id and state, so no caching, no referrer. */
const protect = (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.setHeaders(response, {
    ...(response.headers["cache-control"] === undefined ? { "cache-control": "no-store" } : {}),
    ...(response.headers["referrer-policy"] === undefined ? { "referrer-policy": "no-referrer" } : {})
  })

/**
 * The callback's own fields in Connect UI's wire names, as core's `ConnectCallback` (and so
 * `EmbeddedActions.completeConnection`) reads them; the partner's `app` parameter is not one of them.
 *
 * @example
 * ```ts
 * import { HttpServerRequest } from "@effect/platform"
 * import { Domain, EmbeddedActions } from "@effect-zapier/core"
 * import { ConnectCallback } from "@effect-zapier/http"
 * import { Effect, Either } from "effect"
 *
 * const user = Domain.EndUser.make({ userId: "u-42", tenantId: "acme" })
 * const app = Domain.AppId.make("slack")
 *
 * const complete = Effect.gen(function* () {
 *   const request = yield* HttpServerRequest.HttpServerRequest
 *   const actions = yield* EmbeddedActions.EmbeddedActions
 *   const parsed = ConnectCallback.parseQuery(request.url.split("?")[1] ?? "")
 *   if (Either.isRight(parsed)) {
 *     yield* actions.completeConnection(user, app, ConnectCallback.toCallback(parsed.right))
 *   }
 * })
 * ```
 * @since 0.1.0
 */
export const toCallback = (query: CallbackQuery): Readonly<Record<string, string>> => {
  const fields: Record<string, string | undefined> =
    query._tag === "Success"
      ? {
          authentication_id: query.authenticationId,
          service: query.service,
          state: query.state,
          [attemptParameter]: query.attempt
        }
      : {
          error: query.error,
          error_description: query.description,
          state: query.state,
          [attemptParameter]: query.attempt
        }
  return Object.fromEntries(Object.entries(fields).filter((e): e is [string, string] => e[1] !== undefined))
}

/** What a refusal is called in the span and the log line: ConnectFailed's reason, else the error's tag. */
const reasonOf = (error: unknown): string =>
  error instanceof ConnectFailed
    ? error.reason
    : typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string"
      ? error._tag
      : "failure"

/** The app a service key maps to: own properties only (never `Object.prototype`'s), and only app ids. */
const lookupService = (
  services: ReadonlyMap<string, AppId> | Readonly<Record<string, AppId>> | undefined,
  service: string
): AppId | undefined => {
  if (services === undefined) return undefined
  const found: unknown =
    services instanceof Map
      ? services.get(service)
      : Object.hasOwn(services, service)
        ? (services as Readonly<Record<string, unknown>>)[service]
        : undefined
  return typeof found === "string" && Either.isRight(decodeAppId(found)) ? (found as AppId) : undefined
}

const queryOf = (url: string): string => {
  const at = url.indexOf("?")
  return at === -1 ? "" : url.slice(at + 1)
}

/**
 * The callback handler: an `@effect/platform` `HttpApp` to mount on the partner's router at the `redirect_uri`
 * its Connect links carry (`HttpRouter.get(path, ConnectCallback.handler({...}))`). It needs core's
 * `EmbeddedActions` and `ConnectionStore` from the server's context, and answers with `onSuccess`/`onFailure`'s
 * response (with `Cache-Control: no-store` and `Referrer-Policy: no-referrer` added unless set).
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
 * import { Domain } from "@effect-zapier/core"
 * import { ConnectCallback } from "@effect-zapier/http"
 * import { Effect } from "effect"
 *
 * // The partner's own session: here the signed-in user's id, from a cookie its login sets.
 * const endUserOf = (request: HttpServerRequest.HttpServerRequest) =>
 *   Effect.fromNullable(request.cookies.session).pipe(
 *     Effect.map((userId) => Domain.EndUser.make({ userId, tenantId: "acme" }))
 *   )
 *
 * const callback = ConnectCallback.handler({
 *   app: Domain.AppId.make("slack"), // this route completes Slack connections only
 *   resolveUser: endUserOf,
 *   onSuccess: () => HttpServerResponse.redirect("/integrations/slack?connected=1", { status: 303 }),
 *   onFailure: () => HttpServerResponse.redirect("/integrations/slack?connected=0", { status: 303 })
 * })
 * const routes = HttpRouter.empty.pipe(HttpRouter.get("/zapier/callback/slack", callback))
 * ```
 * @since 0.1.0
 * @category handlers
 */
export const handler = <EU, RU, ES, RS, EF, RF>(
  options: Options<EU, RU, ES, RS, EF, RF>
): HttpApp.Default<ES | EF, RU | RS | RF | EmbeddedActions.EmbeddedActions | ConnectionStore.ConnectionStore> =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const refuse = (error: Failure<EU>, context: Omit<FailureContext, "request">) =>
      Effect.gen(function* () {
        const reason = reasonOf(error)
        yield* Effect.annotateCurrentSpan({ "zapier.connect_outcome": reason })
        yield* Effect.logDebug("Zapier connect callback refused").pipe(
          Effect.annotateLogs({
            reason,
            app: context.app ?? unknownApp,
            ...(context.problem !== undefined ? { problem: context.problem } : {})
          })
        )
        return protect(yield* options.onFailure(error, { request, ...context }))
      })

    // 1. The query, strictly; nothing is looked up before it reads as one callback.
    const parsed = parseQuery(queryOf(request.url), options.appParameter)
    if (Either.isLeft(parsed)) {
      const app = options.app ?? parsed.left.app
      return yield* refuse(new ConnectFailed({ app: app ?? unknownApp, reason: "malformed" }), {
        app,
        problem: parsed.left.problem
      })
    }
    const query = parsed.right

    // 2. Whose browser this is, from the partner's own session.
    const user = yield* Effect.either(options.resolveUser(request))
    if (Either.isLeft(user)) return yield* refuse(user.left, { app: options.app ?? query.app })

    // 3. Which app: the partner's declaration, checked against the rest, else the attempt the state names.
    const mapped =
      query._tag === "Success" && query.service !== undefined
        ? lookupService(options.services, query.service)
        : undefined
    const declared = options.app ?? query.app ?? mapped
    const conflict =
      (options.app !== undefined && query.app !== undefined && query.app !== options.app) ||
      (declared !== undefined && mapped !== undefined && mapped !== declared)
    if (conflict) {
      return yield* refuse(new ConnectFailed({ app: declared ?? unknownApp, reason: "other_app" }), {
        user: user.right,
        app: declared
      })
    }
    let app = declared
    const binding = query.state ?? query.attempt
    if (app === undefined && binding !== undefined) {
      const store = yield* ConnectionStore.ConnectionStore
      const attempt = yield* Effect.either(store.findAttempt(binding))
      if (Either.isLeft(attempt)) return yield* refuse(attempt.left, { user: user.right })
      if (Option.isNone(attempt.right)) {
        return yield* refuse(new ConnectFailed({ app: unknownApp, reason: "state_mismatch" }), { user: user.right })
      }
      app = attempt.right.value.attempt.app
    }
    if (app === undefined) {
      const problem = `the callback does not say which app it is for: put ${options.appParameter ?? "app"}=<app id> into the redirect_uri, or give the handler an app or services option`
      return yield* refuse(new ConnectFailed({ app: unknownApp, reason: "malformed" }), { user: user.right, problem })
    }
    yield* Effect.annotateCurrentSpan({ "zapier.app": app })

    // 4. Complete it: open attempt of this user and app, once, the connection verified in the user's list.
    const actions = yield* EmbeddedActions.EmbeddedActions
    const completed = yield* Effect.either(actions.completeConnection(user.right, app, toCallback(query)))
    if (Either.isLeft(completed)) return yield* refuse(completed.left, { user: user.right, app })
    yield* Effect.annotateCurrentSpan({ "zapier.connect_outcome": "connected" })
    return protect(yield* options.onSuccess(completed.right, { request, user: user.right, app }))
  }).pipe(Effect.withSpan("ConnectCallback.handle"))

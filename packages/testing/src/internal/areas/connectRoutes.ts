/**
 * Area: connections and Connect UI, its HTTP side: `GET /v2/authentications` and the Connect UI pages (the page a
 * link opens, the approve/deny form, the redirect or popup page it ends on). The model, the control methods and
 * core's `Connections` in memory are in `connect.ts`.
 *
 * @internal
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type { ConnectOutcome } from "../model/failures.js"
import { ApiFailure } from "../model/failures.js"
import type { Routes, ServerKit } from "../server/kit.js"
import { Count, decodeQuery, json, OptionalString, respond } from "../server/kit.js"

import { endpoints, type Model, popupMessage, redirectUrlOf } from "./connect.js"

// ---------------------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------------------

const escapeHtml = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;")

/** JSON safe to embed in a `<script>`. */
const scriptJson = (value: unknown) =>
  JSON.stringify(value).replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/&/g, "\\u0026")

const page = (title: string, body: string, status = 200) =>
  HttpServerResponse.text(
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>` +
      `<body>${body}</body></html>\n`,
    { status, contentType: "text/html; charset=utf-8", headers: { "cache-control": "no-store" } }
  )

/** The page Connect UI ends on in the popup pattern: posts the outcome to the opener, then closes. */
const popupPage = (outcome: ConnectOutcome) => {
  const message = popupMessage(outcome)
  const title = outcome._tag === "Approved" ? "Connected" : "Connection failed"
  const text =
    outcome._tag === "Approved"
      ? "<p>Connected. You can close this window.</p>"
      : `<p>${escapeHtml(outcome.error)}: ${escapeHtml(outcome.description)}</p>`
  return page(
    title,
    `<h1>${title}</h1>${text}` +
      `<script>window.opener && window.opener.postMessage(${scriptJson(message)}, "*"); window.close();</script>`,
    outcome._tag === "Approved" ? 200 : 400
  )
}

/** Where Connect UI sends the browser for an outcome: the redirect, or the popup page. */
const connectReply = (outcome: ConnectOutcome) => {
  const location = redirectUrlOf(outcome)
  return location !== undefined
    ? HttpServerResponse.redirect(location, { status: 302, headers: { "cache-control": "no-store" } })
    : popupPage(outcome)
}

// ---------------------------------------------------------------------------------------------------------------
// Request schemas
// ---------------------------------------------------------------------------------------------------------------
const ListQuery = Schema.Struct({
  app: OptionalString,
  limit: Schema.optional(Count),
  offset: Schema.optional(Count)
})

const ConnectQuery = Schema.Struct({
  token: OptionalString,
  state: OptionalString,
  redirect_uri: OptionalString,
  reconnect_id: OptionalString,
  theme: OptionalString
})

const ConnectForm = Schema.Struct({
  session: Schema.String,
  decision: Schema.Literal("approve", "deny"),
  title: OptionalString
})

/** `GET /v2/authentications` and the Connect UI pages. */
export const routes = (server: ServerKit, m: Model): Routes => {
  const { api, gated, handle, pathOf } = server
  const page_ = server.page

  const authentications = api(endpoints.authentications, (user) =>
    Effect.gen(function* () {
      const q = yield* decodeQuery(ListQuery)
      if (q.app === undefined || q.app.length === 0) {
        return yield* Effect.fail(ApiFailure.invalid("The app query parameter is required.", "app"))
      }
      const limit = Math.min(Math.max(q.limit ?? 10, 1), 100)
      const offset = q.offset ?? 0
      const { items, count } = yield* m.listConnections(user, q.app, limit, offset)
      return json({
        ...page_("/v2/authentications", count, limit, offset, { app: q.app }),
        data: items.map((c) => ({
          type: "authentication",
          id: c.id,
          app: c.app,
          is_expired: c.isExpired,
          title: c.title
        }))
      })
    })
  )

  const connectPage = handle(endpoints.connectPage)(
    Effect.gen(function* () {
      const req = yield* HttpServerRequest.HttpServerRequest
      const params = yield* HttpRouter.params
      const app = params.app ?? ""
      const q = yield* Effect.orElseSucceed(decodeQuery(ConnectQuery), () => ({}) as typeof ConnectQuery.Type)
      const opened = yield* Effect.either(
        m.openSession(app, {
          token: q.token,
          state: q.state,
          redirectUri: q.redirect_uri,
          reconnectId: q.reconnect_id
        })
      )
      return yield* gated(
        { method: req.method, endpoint: endpoints.connectPage, path: pathOf(req) },
        Either.isLeft(opened)
          ? Effect.succeed(connectReply(opened.left))
          : Effect.succeed(
              page(
                `Connect ${opened.right.appTitle}`,
                `<h1>${opened.right.reconnect !== undefined ? "Reconnect" : "Connect"} ${escapeHtml(opened.right.appTitle)}</h1>` +
                  `<p>Allow this app to use your ${escapeHtml(opened.right.appTitle)} account` +
                  `${opened.right.reconnect !== undefined ? ` (connection ${escapeHtml(opened.right.reconnect)})` : ""}.</p>` +
                  `<form method="post" action="/to/${encodeURIComponent(app)}">` +
                  `<input type="hidden" name="session" value="${escapeHtml(opened.right.id)}">` +
                  `<label>Title <input name="title" value=""></label> ` +
                  `<button type="submit" name="decision" value="approve" id="approve">Approve</button> ` +
                  `<button type="submit" name="decision" value="deny" id="deny">Deny</button>` +
                  "</form>"
              )
            ),
        (failure) => page(failure.title, `<p>${escapeHtml(failure.detail)}</p>`, failure.status),
        () => page("Error", "<p>An unexpected error occurred</p>", 500)
      ).pipe(
        Effect.map((reply) =>
          reply._tag === "Response" && Either.isRight(opened) ? { ...reply, user: opened.right.user } : reply
        )
      )
    })
  )

  const connectSubmit = handle(endpoints.connectSubmit)(
    Effect.gen(function* () {
      const req = yield* HttpServerRequest.HttpServerRequest
      const form = yield* req.urlParamsBody.pipe(
        Effect.flatMap((p) => Schema.decodeUnknown(ConnectForm)(Object.fromEntries(p))),
        Effect.either
      )
      if (Either.isLeft(form)) {
        return respond(page("Error", "<p>Session initialization failed</p>", 400))
      }
      const title = form.right.title?.trim()
      const outcome = yield* m.finishSession(
        form.right.session,
        form.right.decision === "approve"
          ? { _tag: "Approve", title: title !== undefined && title.length > 0 ? title : undefined }
          : { _tag: "Deny", error: "server_error", description: "OAuth Failed: access_denied" }
      )
      return yield* gated(
        { method: req.method, endpoint: endpoints.connectSubmit, path: pathOf(req) },
        Effect.succeed(connectReply(outcome)),
        (failure) => page(failure.title, `<p>${escapeHtml(failure.detail)}</p>`, failure.status),
        () => page("Error", "<p>An unexpected error occurred</p>", 500)
      ).pipe(Effect.map((reply) => (outcome._tag === "Approved" ? { ...reply, user: outcome.connection.user } : reply)))
    })
  )

  return [
    HttpRouter.makeRoute("GET", "/v2/authentications", authentications),
    HttpRouter.makeRoute("GET", "/to/:app", connectPage),
    HttpRouter.makeRoute("POST", "/to/:app", connectSubmit)
  ]
}

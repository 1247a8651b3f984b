/**
 * `GET /zapier/callback?app=<id>`: where Zapier Connect sends the browser back in the redirect pattern (the page
 * falls back to it when the browser blocks the popup). `ConnectCallback.handler` of `@effect-zapier/http` reads
 * the query strictly, takes the end user from the session cookie (never from the query), and completes the
 * connection; the browser is then sent back to the page with the outcome.
 */
import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import type { ConnectionStore, EmbeddedActions } from "@effect-zapier/core"
import { ConnectCallback } from "@effect-zapier/http"
import { Effect, type Layer, Option } from "effect"
import { NotLoggedIn, SESSION_COOKIE } from "./Api.js"
import { ReconnectLinks } from "./ReconnectLinks.js"
import { Sessions } from "./Session.js"

const back = (query: Record<string, string>) =>
  HttpServerResponse.redirect(`/?${new URLSearchParams(query)}`, { status: 303 })

export const layer: Layer.Layer<
  never,
  never,
  EmbeddedActions.EmbeddedActions | ConnectionStore.ConnectionStore | Sessions | ReconnectLinks
> = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function* () {
    const sessions = yield* Sessions
    const links = yield* ReconnectLinks
    const handler = ConnectCallback.handler({
      resolveUser: (request) =>
        Effect.flatMap(sessions.verify(request.cookies[SESSION_COOKIE] ?? ""), (user) =>
          Option.match(user, {
            onNone: () =>
              Effect.fail(new NotLoggedIn({ message: "Log in first: the session is missing or has expired." })),
            onSome: Effect.succeed
          })
        ),
      // The link was used: the next GET of the connection gets a fresh one (ReconnectLinks).
      onSuccess: (connection, { user }) =>
        Effect.as(links.drop(user, connection.app), back({ connect: "ok", app: connection.app })),
      // Only a reason code goes back to the page, which shows its own words for it: the callback's URL is anybody's
      // to craft, so nothing from it (Zapier's error_description included) is shown to the user as text.
      onFailure: (error, { app, user }) =>
        Effect.as(
          user !== undefined && app !== undefined ? links.drop(user, app) : Effect.void,
          back({
            connect: "failed",
            reason:
              error._tag === "ConnectFailed"
                ? error.reason
                : error._tag === "NotLoggedIn"
                  ? "not_logged_in"
                  : "unavailable"
          })
        )
    })
    const context = yield* Effect.context<EmbeddedActions.EmbeddedActions | ConnectionStore.ConnectionStore>()
    yield* router.get("/zapier/callback", Effect.provide(handler, context))
  })
)

/**
 * `Connections` over `GET /v2/authentications` (every page) and Connect UI links
 * (`{connectUrl}/to/{app}?token=…&reconnect_id=…&redirect_uri=…&state=…&theme=…`).
 *
 * Build it with `ZapierHttp.layer`.
 *
 * @example
 * ```ts
 * import { Connections, Domain } from "@effect-zapier/core"
 * import { Effect } from "effect"
 *
 * const user = Domain.EndUser.make({ userId: "u-42", tenantId: "acme" })
 * const app = Domain.AppId.make("slack")
 *
 * const program = Effect.gen(function* () {
 *   const connections = yield* Connections.Connections
 *   const all = yield* connections.list(user, app)
 *   const link = yield* connections.connectLink(user, app, { redirectUri: "https://partner.example/callback" })
 * })
 * ```
 * @internal
 */
import * as Connections from "@effect-zapier/core/Connections"
import type { AppId, EndUser } from "@effect-zapier/core/Domain"
import { AppId as AppIdSchema, Connection, ConnectionId, ConnectLink } from "@effect-zapier/core/Domain"
import type * as TokenExchange from "@effect-zapier/core/TokenExchange"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Wire from "../Wire.js"
import type { Api } from "./api.js"
import { paginate } from "./api.js"
import { decodeBody } from "./errors.js"

const decodePage = decodeBody(Wire.AuthenticationsPage)

/**
 * The connections service of one layer.
 * @since 0.1.0
 * @category constructors
 */
export const make = (api: Api, tokens: TokenExchange.Service): Connections.Service => {
  const { settings } = api.env

  const list = Effect.fn("Connections.list")(function* (user: EndUser, app: AppId) {
    yield* Effect.annotateCurrentSpan("zapier.app", app)
    const items = yield* paginate(api, user, {
      endpoint: "GET /v2/authentications",
      path: "/v2/authentications",
      query: { app },
      resource: `app ${app}`,
      decode: (raw) =>
        Either.map(decodePage(raw.status, raw.body), (page) => ({
          items: page.data,
          next: page.links?.next,
          count: page.meta?.count
        }))
    })
    const connections = items.flatMap((item) => {
      // Ids and app ids that are empty after trimming are not usable: skip them rather than fail the list.
      const id = item.id.trim()
      const itemApp = item.app.trim()
      if (id.length === 0 || itemApp.length === 0) return []
      return [
        Connection.make({
          id: ConnectionId.make(id),
          app: AppIdSchema.make(itemApp),
          isExpired: item.is_expired,
          ...(item.title ? { title: item.title } : {})
        })
      ]
    })
    yield* Effect.annotateCurrentSpan("zapier.connections", connections.length)
    return connections
  })

  const connectLink = Effect.fn("Connections.connectLink")(function* (
    user: EndUser,
    app: AppId,
    options?: Connections.ConnectLinkOptions
  ) {
    yield* Effect.annotateCurrentSpan("zapier.app", app)
    if (options?.reconnect !== undefined) yield* Effect.annotateCurrentSpan("zapier.reconnect", options.reconnect)
    const token = yield* tokens.connectToken(user, app)
    const url = new URL(`${settings.connectUrl}/to/${encodeURIComponent(app)}`)
    url.searchParams.set("token", Redacted.value(token.value))
    if (options?.reconnect !== undefined) url.searchParams.set("reconnect_id", options.reconnect)
    if (options?.redirectUri !== undefined) url.searchParams.set("redirect_uri", options.redirectUri)
    if (options?.state !== undefined) url.searchParams.set("state", options.state)
    if (options?.theme !== undefined) url.searchParams.set("theme", options.theme)
    return ConnectLink.make({
      url: url.toString(),
      app,
      expiresAt: token.expiresAt,
      ...(options?.reconnect !== undefined ? { reconnect: options.reconnect } : {}),
      ...(options?.state !== undefined ? { state: options.state } : {})
    })
  })

  return Connections.Connections.of({ list, connectLink })
}

/**
 * Steps 2 and 3 of the flow: the user's connections to an app, and Connect UI links to make one.
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
 *   const all = yield* connections.list(user, app) // every page
 *   const link = yield* connections.connectLink(user, app, { redirectUri: "https://partner.example/zapier/callback" })
 * })
 * ```
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { AppId, Connection, ConnectionId, ConnectLink, EndUser } from "./Domain.js"
import type { RequestError } from "./Errors.js"

/**
 * Options of a Connect UI link.
 * @since 0.1.0
 */
export interface ConnectLinkOptions {
  /** Re-authorize this (expired) connection in place instead of creating a new one. */
  readonly reconnect?: ConnectionId | undefined
  /** Where Connect UI redirects when done (must be registered with Zapier); omit for the popup pattern. */
  readonly redirectUri?: string | undefined
  /** An unguessable value tying the callback to this link. */
  readonly state?: string | undefined
  /** The partner's Connect UI theme. */
  readonly theme?: string | undefined
}

/** @since 0.1.0 */
export interface Service {
  /** Every connection of this user to `app` (all pages), expired ones included. */
  readonly list: (user: EndUser, app: AppId) => Effect.Effect<ReadonlyArray<Connection>, RequestError>
  /** Mints a connect token and builds the Connect UI link for it. */
  readonly connectLink: (
    user: EndUser,
    app: AppId,
    options?: ConnectLinkOptions
  ) => Effect.Effect<ConnectLink, RequestError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Connections extends Context.Tag("@effect-zapier/core/Connections")<Connections, Service>() {}

/**
 * Area: connections and Connect UI: the user's connections, Connect UI sessions (opened by a link, finished by
 * an approval or a refusal, with the callback and the redirect a browser gets), core's `Connections` in memory,
 * and the control methods that add connections and act as the end user in Connect UI. The routes
 * (`GET /v2/authentications`, the Connect UI pages) are in `connectRoutes.ts`.
 *
 * @internal
 */
import { Connections, Domain, type Errors } from "@effect-zapier/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import type { ClientKit } from "../client.js"
import type { ConnectOutcome, ConnectRefusal } from "../model/failures.js"
import type { ConnectionRecord, Kit, SessionRecord, State } from "../model/state.js"
import {
  addConnectionTo,
  appendLedger,
  connectionsOf,
  connectResource,
  misuse,
  provision,
  randomToken,
  toConnection,
  userKey
} from "../model/state.js"
import { withQuery } from "../server/kit.js"
import type * as FZ from "../types.js"

/** The endpoints of this area, as the ledger and fault rules name them. */
export const endpoints = {
  authentications: "GET /v2/authentications",
  connectPage: "GET /to/{app}",
  connectSubmit: "POST /to/{app}"
} as const

/**
 * What a real browser delivers to the partner when Connect UI finishes: the redirect's query, or the popup's
 * `postMessage` data. Feed it to `EmbeddedActions.completeConnection`.
 * @since 0.1.0
 * @category connect
 */
export type ConnectCallbackPayload =
  | ({ readonly authentication_id: string; readonly service: string; readonly state?: string } & RedirectParameters)
  | ({ readonly error: string; readonly error_description: string; readonly state?: string } & RedirectParameters)
  | { readonly type: "authenticationSuccess"; readonly authId: number | string }
  | {
      readonly type: "authenticationError"
      readonly error: { readonly error: string; readonly error_description: string }
    }

/**
 * The parameters of the `redirect_uri` itself (the partner's own, and the library's `connect_attempt`), which a
 * browser sent back to it still carries next to Connect UI's.
 * @since 0.1.0
 * @category connect
 */
export type RedirectParameters = { readonly [parameter: string]: string | undefined }

/**
 * How `approveConnect` / `denyConnect` deliver the outcome: the redirect query (default) or the popup message.
 * @since 0.1.0
 * @category connect
 */
export interface ConnectOptions {
  readonly mode?: "redirect" | "popup" | undefined
  /** The title of a new connection (default `"<App title> <userId>"`). */
  readonly title?: string | undefined
}

/**
 * Options of `denyConnect` (default: `server_error`, `OAuth Failed: access_denied`, as when the user refuses
 * the third-party consent screen).
 * @since 0.1.0
 * @category connect
 */
export interface DenyOptions {
  readonly mode?: "redirect" | "popup" | undefined
  readonly error?: string | undefined
  readonly description?: string | undefined
}

/**
 * What the end user's browser is left with when Connect UI finishes, as `approveConnectInBrowser` /
 * `denyConnectInBrowser` return it.
 * @since 0.2.0
 * @category connect
 */
export interface BrowserOutcome {
  /** The callback, as `approveConnect` / `denyConnect` return it: the redirect's query, or the popup message. */
  readonly callback: ConnectCallbackPayload
  /**
   * Where Connect UI sends the browser (the `Location` of its 302): the link's `redirect_uri` with its own
   * parameters kept (the partner's, e.g. `app=`, and the library's `connect_attempt`) and the callback's set
   * (`authentication_id` and `service`, or `error` and `error_description`; `state`). A test GETs it on the
   * partner's server, as the browser would. Undefined in popup mode and for a link without a `redirect_uri`
   * (Connect UI then ends on the page that posts `callback` to the opener).
   */
  readonly redirectUrl: string | undefined
}

/** The control methods of this area. */
export interface ConnectControl {
  /** Provisions an end user (as their first token exchange would). */
  readonly addUser: (user: Domain.EndUser) => Effect.Effect<void>
  /** Adds a connection of the user to the app (provisioning the user); listed after the existing ones. */
  readonly addConnection: (
    user: Domain.EndUser,
    app: string,
    options?: Omit<FZ.ConnectionSeed, "app">
  ) => Effect.Effect<Domain.Connection, Errors.NotFound>
  /** Marks a connection expired (`is_expired: true`). */
  readonly expireConnection: (connection: string) => Effect.Effect<void, Errors.NotFound>
  /** The user's connections (to one app or all), in creation order. */
  readonly connections: (user: Domain.EndUser, app?: string) => Effect.Effect<ReadonlyArray<Domain.Connection>>
  /**
   * Acts as the end user finishing Connect UI for a link (a `ConnectLink`, its URL, or a bare connect token):
   * consumes the token, creates the connection (or re-validates `reconnect_id` in place) and returns the callback
   * a browser would deliver. An expired, reused or invalid token returns the error callback instead, as Connect UI
   * does (`invalid_request`, `Token expired` / `Invalid token`).
   */
  readonly approveConnect: (
    link: Domain.ConnectLink | string,
    options?: ConnectOptions
  ) => Effect.Effect<ConnectCallbackPayload>
  /** Acts as the end user refusing in Connect UI: consumes the token and returns the error callback. */
  readonly denyConnect: (
    link: Domain.ConnectLink | string,
    options?: DenyOptions
  ) => Effect.Effect<ConnectCallbackPayload>
  /**
   * `approveConnect`, with the URL the browser is then sent to (`redirectUrl`: the partner's `redirect_uri` with
   * the callback query), so a test over HTTP follows it into the partner's callback route without rebuilding it.
   */
  readonly approveConnectInBrowser: (
    link: Domain.ConnectLink | string,
    options?: ConnectOptions
  ) => Effect.Effect<BrowserOutcome>
  /** `denyConnect`, with the URL the browser is then sent to (see `approveConnectInBrowser`). */
  readonly denyConnectInBrowser: (
    link: Domain.ConnectLink | string,
    options?: DenyOptions
  ) => Effect.Effect<BrowserOutcome>
}

export interface ConnectParams {
  readonly token?: string | undefined
  readonly state?: string | undefined
  readonly redirectUri?: string | undefined
  readonly reconnectId?: string | undefined
}

export interface Session {
  readonly id: string
  readonly appTitle: string
  readonly service: string
  readonly user: Domain.EndUser
  readonly reconnect: Domain.ConnectionId | undefined
  readonly state: string | undefined
  readonly redirectUri: string | undefined
}

export const redirectQuery = (outcome: ConnectOutcome): Record<string, string> => {
  const state = outcome.state !== undefined ? { state: outcome.state } : {}
  return outcome._tag === "Approved"
    ? { authentication_id: outcome.connection.id, service: outcome.service, ...state }
    : { error: outcome.error, error_description: outcome.description, ...state }
}

/** The popup `postMessage` data Connect UI sends for an outcome. */
export const popupMessage = (outcome: ConnectOutcome): ConnectCallbackPayload =>
  outcome._tag === "Approved"
    ? {
        type: "authenticationSuccess",
        authId: /^\d{1,15}$/.test(outcome.connection.id) ? Number(outcome.connection.id) : outcome.connection.id
      }
    : { type: "authenticationError", error: { error: outcome.error, error_description: outcome.description } }

/** The query of a redirect URI, as a browser landing on it would have it (empty when it is not a URL). */
const parametersOf = (redirectUri: string | undefined): Record<string, string> => {
  if (redirectUri === undefined) return {}
  try {
    return Object.fromEntries(new URL(redirectUri).searchParams)
  } catch {
    return {}
  }
}

/** The part of a redirect URI that registration compares: everything but the query and fragment. */
const withoutQuery = (uri: string): string => uri.split("#")[0]!.split("?")[0]!

/** Where Connect UI sends the browser in redirect mode: the redirect_uri with the callback query set over its own. */
export const redirectUrlOf = (outcome: ConnectOutcome): string | undefined =>
  outcome.redirectUri !== undefined ? withQuery(outcome.redirectUri, redirectQuery(outcome)) : undefined

const toBrowser = (outcome: ConnectOutcome, mode: "redirect" | "popup" | undefined): BrowserOutcome => ({
  callback: toPayload(outcome, mode),
  redirectUrl: mode === "popup" ? undefined : redirectUrlOf(outcome)
})

const toPayload = (outcome: ConnectOutcome, mode: "redirect" | "popup" | undefined): ConnectCallbackPayload => {
  if (mode === "popup") return popupMessage(outcome)
  // The browser lands on the redirect_uri with its own query kept and Connect UI's parameters set over it.
  const own = parametersOf(outcome.redirectUri)
  const state = outcome.state !== undefined ? { state: outcome.state } : {}
  return outcome._tag === "Approved"
    ? { ...own, authentication_id: outcome.connection.id, service: outcome.service, ...state }
    : { ...own, error: outcome.error, error_description: outcome.description, ...state }
}

// ---------------------------------------------------------------------------------------------------------------
// The gate: fault plan and rate limit
// ---------------------------------------------------------------------------------------------------------------

/** The model side: connections, Connect UI sessions, and their controls. */
export const model = (kit: Kit) => {
  const { now, state } = kit

  const listConnections = (user: Domain.EndUser, app: string, limit: number, offset: number) =>
    Effect.map(Ref.get(state), (s) => {
      const all = connectionsOf(s, userKey(user), app)
      return { items: all.slice(offset, offset + limit), count: all.length }
    })

  const refuse = (
    app: string,
    user: Domain.EndUser | undefined,
    error: string,
    description: string,
    params: ConnectParams,
    redirect: boolean
  ) =>
    Effect.flatMap(now, (t) =>
      Effect.zipRight(
        Ref.update(state, (s) =>
          appendLedger(s, "connects", { at: t, user, app, outcome: "refused", error, description })
        ),
        Effect.fail<ConnectRefusal>({
          _tag: "Refused",
          error,
          description,
          state: params.state,
          redirectUri: redirect ? params.redirectUri : undefined
        })
      )
    )

  const openSession = (app: string, params: ConnectParams) =>
    Effect.gen(function* () {
      const t = yield* now
      const s = yield* Ref.get(state)
      const registered =
        params.redirectUri === undefined ||
        s.partner.redirectUris === undefined ||
        s.partner.redirectUris.some((uri) => withoutQuery(uri) === withoutQuery(params.redirectUri!))
      if (!registered) {
        return yield* refuse(app, undefined, "invalid_request", "Invalid redirect_uri", params, false)
      }
      const record =
        params.token === undefined ? undefined : Option.getOrUndefined(HashMap.get(s.connectTokens, params.token))
      if (record === undefined || record.used) {
        return yield* refuse(app, record?.user, "invalid_request", "Invalid token", params, true)
      }
      // The session starts: the token is spent whatever happens next.
      yield* Ref.update(state, (s) => ({
        ...s,
        connectTokens: HashMap.set(s.connectTokens, params.token!, { ...record, used: true })
      }))
      if (t >= record.expiresAt) {
        return yield* refuse(app, record.user, "invalid_request", "Token expired", params, true)
      }
      if (record.app !== app) {
        return yield* refuse(app, record.user, "invalid_request", "Invalid token", params, true)
      }
      const appRecord = s.apps.find((a) => a.id === app)
      if (appRecord === undefined) {
        return yield* refuse(app, record.user, "invalid_request", "Invalid app", params, true)
      }
      if (!HashMap.has(s.users, userKey(record.user))) {
        return yield* refuse(app, record.user, "access_denied", "User not found", params, true)
      }
      let reconnect: Domain.ConnectionId | undefined
      if (params.reconnectId !== undefined) {
        const existing = Option.getOrUndefined(HashMap.get(s.connections, params.reconnectId))
        if (existing === undefined || existing.userKey !== userKey(record.user) || existing.app !== appRecord.id) {
          return yield* refuse(app, record.user, "invalid_request", "Invalid reconnect_id", params, true)
        }
        reconnect = existing.id
      }
      const id = yield* randomToken("cs_", 16)
      const session: SessionRecord = {
        id,
        user: record.user,
        app: appRecord.id,
        service: appRecord.service,
        appTitle: appRecord.title,
        state: params.state,
        redirectUri: params.redirectUri,
        reconnect,
        expiresAt: t + 30 * 60_000,
        done: false
      }
      yield* Ref.update(state, (s) => ({ ...s, sessions: HashMap.set(s.sessions, id, session) }))
      return {
        id,
        appTitle: appRecord.title,
        service: appRecord.service,
        user: record.user,
        reconnect,
        state: params.state,
        redirectUri: params.redirectUri
      } satisfies Session
    })

  const finishSession = (
    sessionId: string,
    decision:
      | { readonly _tag: "Approve"; readonly title?: string | undefined }
      | { readonly _tag: "Deny"; readonly error: string; readonly description: string }
  ): Effect.Effect<ConnectOutcome> =>
    Effect.flatMap(now, (t) =>
      Ref.modify(state, (s): readonly [ConnectOutcome, State] => {
        const session = Option.getOrUndefined(HashMap.get(s.sessions, sessionId))
        if (session === undefined || session.done || t >= session.expiresAt) {
          const refused: ConnectRefusal = {
            _tag: "Refused",
            error: "server_error",
            description: "Session initialization failed",
            state: session?.state,
            redirectUri: session?.redirectUri
          }
          return [
            refused,
            appendLedger(s, "connects", {
              at: t,
              user: session?.user,
              app: session?.app ?? "",
              outcome: "refused",
              error: refused.error,
              description: refused.description
            })
          ]
        }
        const closed = { ...s, sessions: HashMap.set(s.sessions, sessionId, { ...session, done: true }) }
        if (decision._tag === "Deny") {
          return [
            {
              _tag: "Denied",
              error: decision.error,
              description: decision.description,
              state: session.state,
              redirectUri: session.redirectUri
            },
            appendLedger(closed, "connects", {
              at: t,
              user: session.user,
              app: session.app,
              outcome: "denied",
              error: decision.error,
              description: decision.description
            })
          ]
        }
        let next: State
        let connection: ConnectionRecord
        const existing =
          session.reconnect !== undefined
            ? Option.getOrUndefined(HashMap.get(closed.connections, session.reconnect))
            : undefined
        if (existing !== undefined) {
          connection = { ...existing, isExpired: false, title: decision.title ?? existing.title }
          next = { ...closed, connections: HashMap.set(closed.connections, existing.id, connection) }
        } else {
          const added = addConnectionTo(closed, session.user, session.app, {
            title: decision.title ?? `${session.appTitle} ${session.user.userId}`
          })!
          next = added[0]
          connection = added[1]
        }
        return [
          {
            _tag: "Approved",
            connection,
            service: session.service,
            state: session.state,
            redirectUri: session.redirectUri
          },
          appendLedger(next, "connects", {
            at: t,
            user: session.user,
            app: session.app,
            outcome: "approved",
            connection: connection.id,
            reconnect: existing !== undefined
          })
        ]
      })
    )

  // --- control --------------------------------------------------------------------------------------------

  const parseLink = (link: Domain.ConnectLink | string): Effect.Effect<{ app: string; params: ConnectParams }> =>
    Effect.gen(function* () {
      const raw = typeof link === "string" ? link : link.url
      let url: URL | undefined
      try {
        url = new URL(raw)
      } catch {
        url = undefined
      }
      if (url === undefined) {
        // A bare connect token: the app is the one it was minted for.
        const s = yield* Ref.get(state)
        const record = Option.getOrUndefined(HashMap.get(s.connectTokens, raw))
        return { app: record?.app ?? "", params: { token: raw } }
      }
      const match = /\/to\/([^/]+)\/?$/.exec(url.pathname)
      const q = url.searchParams
      const opt = (name: string) => q.get(name) ?? undefined
      return {
        app: match ? decodeURIComponent(match[1]!) : "",
        params: {
          token: opt("token"),
          state: opt("state"),
          redirectUri: opt("redirect_uri"),
          reconnectId: opt("reconnect_id")
        }
      }
    })

  const finishLink = (
    link: Domain.ConnectLink | string,
    mode: "redirect" | "popup" | undefined,
    decision:
      | { readonly _tag: "Approve"; readonly title?: string | undefined }
      | { readonly _tag: "Deny"; readonly error: string; readonly description: string }
  ) =>
    Effect.gen(function* () {
      const { app, params } = yield* parseLink(link)
      const outcome: ConnectOutcome = yield* openSession(app, params).pipe(
        Effect.flatMap((session) => finishSession(session.id, decision)),
        Effect.merge
      )
      return toBrowser(outcome, mode)
    })

  const deny = (options: DenyOptions | undefined) =>
    ({
      _tag: "Deny",
      error: options?.error ?? "server_error",
      description: options?.description ?? "OAuth Failed: access_denied"
    }) as const

  const control: ConnectControl = {
    addUser: Effect.fn("FakeZapier.addUser")(function* (user: Domain.EndUser) {
      const t = yield* now
      yield* Ref.update(state, (s) => provision(s, user, t))
    }),
    addConnection: Effect.fn("FakeZapier.addConnection")(function* (
      user: Domain.EndUser,
      app: string,
      options?: Omit<FZ.ConnectionSeed, "app">
    ) {
      const t = yield* now
      const result = yield* Ref.modify(state, (s) => {
        const added = addConnectionTo(provision(s, user, t), user, app, options ?? {})
        return added === undefined ? [undefined, s] : ([added[1], added[0]] as const)
      })
      if (result === undefined) return yield* misuse("addConnection", `app ${app}`)
      return toConnection(result)
    }),
    expireConnection: Effect.fn("FakeZapier.expireConnection")(function* (connection: string) {
      const found = yield* Ref.modify(state, (s) => {
        const c = HashMap.get(s.connections, connection)
        return Option.isNone(c)
          ? [false, s]
          : ([
              true,
              { ...s, connections: HashMap.set(s.connections, connection, { ...c.value, isExpired: true }) }
            ] as const)
      })
      if (!found) return yield* misuse("expireConnection", `connection ${connection}`)
    }),
    connections: Effect.fn("FakeZapier.connections")(function* (user: Domain.EndUser, app?: string) {
      const s = yield* Ref.get(state)
      return connectionsOf(s, userKey(user), app).map(toConnection)
    }),
    approveConnect: Effect.fn("FakeZapier.approveConnect")(function* (
      link: Domain.ConnectLink | string,
      options?: ConnectOptions
    ) {
      return (yield* finishLink(link, options?.mode, { _tag: "Approve", title: options?.title })).callback
    }),
    denyConnect: Effect.fn("FakeZapier.denyConnect")(function* (
      link: Domain.ConnectLink | string,
      options?: DenyOptions
    ) {
      return (yield* finishLink(link, options?.mode, deny(options))).callback
    }),
    approveConnectInBrowser: Effect.fn("FakeZapier.approveConnectInBrowser")(function* (
      link: Domain.ConnectLink | string,
      options?: ConnectOptions
    ) {
      return yield* finishLink(link, options?.mode, { _tag: "Approve", title: options?.title })
    }),
    denyConnectInBrowser: Effect.fn("FakeZapier.denyConnectInBrowser")(function* (
      link: Domain.ConnectLink | string,
      options?: DenyOptions
    ) {
      return yield* finishLink(link, options?.mode, deny(options))
    })
  }
  return { listConnections, openSession, finishSession, control }
}

/** The model side of this area. */
export type Model = ReturnType<typeof model>

/** Core's `Connections`, in memory. */
export const services = (client: ClientKit, m: Model) => {
  const { request, connectToken } = client
  const model = client.model

  const connections = Connections.Connections.of({
    list: Effect.fn("Connections.list")(function* (user: Domain.EndUser, app: Domain.AppId) {
      const page = yield* request(
        { method: "GET", endpoint: endpoints.authentications, path: "/v2/authentications" },
        user,
        m.listConnections(user, app, Number.MAX_SAFE_INTEGER, 0)
      ).pipe(Effect.catchTag("RunOutcomeUnknown", Effect.die))
      return page.items.map((c) =>
        Domain.Connection.make({ id: c.id, app: c.app, title: c.title, isExpired: c.isExpired })
      )
    }),
    connectLink: Effect.fn("Connections.connectLink")(function* (
      user: Domain.EndUser,
      app: Domain.AppId,
      options?: Connections.ConnectLinkOptions
    ) {
      const token = yield* connectToken(user, app)
      const url = new URL(connectResource(model.settings.connectUrl, app))
      url.searchParams.set("token", Redacted.value(token.value))
      if (options?.state !== undefined) url.searchParams.set("state", options.state)
      if (options?.reconnect !== undefined) url.searchParams.set("reconnect_id", options.reconnect)
      if (options?.redirectUri !== undefined) url.searchParams.set("redirect_uri", options.redirectUri)
      if (options?.theme !== undefined) url.searchParams.set("theme", options.theme)
      return Domain.ConnectLink.make({
        url: url.toString(),
        app,
        expiresAt: token.expiresAt,
        ...(options?.reconnect !== undefined ? { reconnect: options.reconnect } : {}),
        ...(options?.state !== undefined ? { state: options.state } : {})
      })
    })
  })

  return Context.make(Connections.Connections, connections)
}

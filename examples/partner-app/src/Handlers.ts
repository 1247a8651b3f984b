/**
 * The API's handlers: each endpoint is a few lines over `EmbeddedActions`, `ActionCatalog` and `Runs`, with the
 * library's typed errors mapped onto the API's (each with its HTTP status).
 */
import { HttpApiBuilder } from "@effect/platform"
import { ActionCatalog, ActionInputs, Apps, type Domain, EmbeddedActions, Errors, Triggers } from "@effect-zapier/core"
import { Context, DateTime, Effect, Layer, Option } from "effect"
import {
  BackendFailed,
  ConnectionNeeded,
  ConnectRefused,
  CurrentUser,
  InvalidRunInputs,
  NotFoundError,
  PartnerApi,
  sessionCookie,
  WatchConflict,
  type WatchView
} from "./Api.js"
import * as ReconnectLinks from "./ReconnectLinks.js"
import { OfferedApps, Runs } from "./Runs.js"
import { Sessions } from "./Session.js"
import * as Watches from "./Watches.js"

/** The origin of Connect UI (`https://connect.zapier.com`, or the fake's): the page trusts popup messages from it only. */
export class ConnectOrigin extends Context.Tag("partner-app/ConnectOrigin")<ConnectOrigin, string>() {}

/** Whether cookies get `Secure` (when the app is served over HTTPS). */
export class SecureCookies extends Context.Tag("partner-app/SecureCookies")<SecureCookies, boolean>() {}

/** Any library error the API does not map specially: 502 with its tag and message. */
const backend = (e: { readonly _tag: string; readonly message: string }) =>
  new BackendFailed({ tag: e._tag, message: e.message })

/** `linkless`: the request asked for no link (`?link=false`), so a 409 without `connectUrl` is the answer. */
const connectionNeeded =
  (origin: string, linkless = false) =>
  (e: Errors.ConnectionRequired) =>
    e.link === undefined && !linkless
      ? Effect.fail(backend(e))
      : Effect.fail(
          new ConnectionNeeded({
            app: e.app,
            reason: e.reason,
            ...(e.link !== undefined ? { connectUrl: e.link.url } : {}),
            connectOrigin: origin,
            message: e.message
          })
        )

/** An action (or trigger) of the catalog as the page lists it. */
const toActionView = (a: Domain.Action) => ({
  key: a.key,
  title: a.title,
  actionType: a.actionType,
  ...(a.description !== undefined ? { description: a.description } : {})
})

/** Fails with a 404 for an app this partner app does not offer. */
const offeredCheck = (offered: ReadonlyArray<{ readonly id: Domain.AppId }>) => (app: Domain.AppId) =>
  offered.some((a) => a.id === app)
    ? Effect.void
    : Effect.fail(new NotFoundError({ message: `This app does not offer ${app}.` }))

const toFieldInfo = (field: ActionInputs.InputField | ActionInputs.InfoField) =>
  field._tag === "InfoField"
    ? {
        kind: "info" as const,
        id: field.id,
        title: "",
        description: field.description,
        required: false,
        type: "any",
        list: false,
        multiline: false,
        invalidates: false
      }
    : {
        kind: "input" as const,
        id: field.id,
        title: field.title || field.id,
        required: field.needsValue,
        type: field.valueType?.toLowerCase() ?? "any",
        list: field.list,
        multiline: field.format === "MULTILINE" || field.format === "CODE",
        invalidates: field.invalidates,
        ...(field.description !== undefined ? { description: field.description } : {}),
        ...(field.default !== undefined ? { default: field.default } : {}),
        ...(field.placeholder !== undefined ? { placeholder: field.placeholder } : {}),
        ...(field.choices !== undefined
          ? { choices: field.choices.map((c) => ({ value: c.value, label: c.label ?? c.value })) }
          : {})
      }

export const SessionLive = HttpApiBuilder.group(PartnerApi, "session", (handlers) =>
  Effect.gen(function* () {
    const sessions = yield* Sessions
    const secure = yield* SecureCookies
    const cookieOptions = { secure, httpOnly: true, sameSite: "lax", path: "/" } as const
    return handlers
      .handle("login", ({ payload }) =>
        Effect.gen(function* () {
          // The demo trusts what the form says. Your app: take the user and tenant from your own session here.
          const user = { userId: payload.userId, tenantId: payload.tenantId }
          const value = yield* sessions.sign(user as Domain.EndUser)
          yield* HttpApiBuilder.securitySetCookie(sessionCookie, value, {
            ...cookieOptions,
            maxAge: sessions.lifetime
          })
          return user
        })
      )
      .handle("me", () => Effect.map(CurrentUser, (u) => ({ userId: u.userId, tenantId: u.tenantId })))
      .handle("logout", () => HttpApiBuilder.securitySetCookie(sessionCookie, "", { ...cookieOptions, maxAge: 0 }))
  })
)

export const AppsLive = HttpApiBuilder.group(PartnerApi, "apps", (handlers) =>
  Effect.gen(function* () {
    const actions = yield* EmbeddedActions.EmbeddedActions
    const catalog = yield* ActionCatalog.ActionCatalog
    const apps = yield* Apps.Apps
    const offered = yield* OfferedApps
    const runs = yield* Runs
    const origin = yield* ConnectOrigin
    const links = yield* ReconnectLinks.ReconnectLinks
    const isOffered = offeredCheck(offered)

    /**
     * The user's connection and, when it is expiring (a connection webhook marked it), its reconnect link: one
     * connect token, minted only when no link of this user and app is kept (a reload or a poll reuses it). Without
     * a valid connection, `ConnectionRequired` with a Connect link (one connect token) unless `mintLink` is false.
     */
    const connectionOf = Effect.fnUntraced(function* (
      user: Domain.EndUser,
      app: Domain.AppId,
      fresh: boolean,
      mintLink: boolean
    ) {
      if (fresh) yield* links.drop(user, app)
      const kept = yield* links.get(user, app)
      const connection = yield* actions.ensureConnection(user, app, {
        reconnectIfExpiring: Option.isNone(kept),
        mintLink
      })
      if (connection.expiring === undefined) {
        // Not expiring, or renewed since: no link to keep.
        yield* links.drop(user, app)
        return { connection, reconnect: undefined }
      }
      if (Option.isSome(kept) && kept.value.connection === connection.id) {
        return { connection, reconnect: kept.value.link }
      }
      // A fresh link: minted by the call above, or now when the link kept renews another connection (rare).
      const minted =
        connection.expiring.reconnect !== undefined
          ? connection
          : yield* actions.ensureConnection(user, app, { reconnectIfExpiring: true, mintLink })
      const reconnect = minted.expiring?.reconnect
      yield* reconnect !== undefined ? links.set(user, app, minted.id, reconnect) : links.drop(user, app)
      return { connection: minted, reconnect }
    })

    return handlers
      .handle("list", () =>
        Effect.gen(function* () {
          const user = yield* CurrentUser
          const page = yield* apps.list(user, { ids: offered.map((a) => a.id), limit: offered.length })
          return offered.map((a) => ({
            id: a.id,
            title: page.apps.find((x) => x.id === a.id)?.title ?? a.id,
            requiresAuth: a.requiresAuth
          }))
        }).pipe(Effect.mapError(backend))
      )
      .handle("connection", ({ path, urlParams }) =>
        Effect.gen(function* () {
          const user = yield* CurrentUser
          yield* isOffered(path.app)
          const { connection, reconnect } = yield* connectionOf(
            user,
            path.app,
            urlParams.fresh === true,
            urlParams.link !== false
          )
          return {
            id: connection.id,
            app: connection.app,
            ...(connection.title ? { title: connection.title } : {}),
            ...(connection.expiring !== undefined
              ? {
                  expiring: {
                    expiresAt: DateTime.toEpochMillis(connection.expiring.expiresAt),
                    connectOrigin: origin,
                    ...(reconnect !== undefined ? { reconnectUrl: reconnect.url } : {})
                  }
                }
              : {})
          }
        }).pipe(
          Effect.catchTags({ ConnectionRequired: connectionNeeded(origin, urlParams.link === false) }),
          Effect.mapError(mapOther)
        )
      )
      .handle("completeConnection", ({ path, payload }) =>
        Effect.gen(function* () {
          const user = yield* CurrentUser
          yield* isOffered(path.app)
          // Connect answered (the link was used, or given up): whatever the outcome, the next GET gets a fresh one.
          const connection = yield* actions
            .completeConnection(user, path.app, payload)
            .pipe(Effect.ensuring(links.drop(user, path.app)))
          return { id: connection.id, app: connection.app, ...(connection.title ? { title: connection.title } : {}) }
        }).pipe(
          Effect.catchTags({
            ConnectFailed: (e) => Effect.fail(new ConnectRefused({ reason: e.reason, message: e.message }))
          }),
          Effect.mapError(mapOther)
        )
      )
      .handle("actions", ({ path }) =>
        Effect.gen(function* () {
          const user = yield* CurrentUser
          yield* isOffered(path.app)
          const list = yield* catalog.list(user, path.app)
          return list.map(toActionView)
        }).pipe(Effect.mapError(mapOther))
      )
      .handle("fields", ({ path, payload }) =>
        Effect.gen(function* () {
          const user = yield* CurrentUser
          yield* isOffered(path.app)
          // The page only says "connect first" on this 409 (it connects from Run or Connect): no link minted.
          const connection = yield* runs.connectionFor(user, path.app, { mintLink: false })
          const action = yield* catalog.resolve(user, path.app, path.action, payload.actionType)
          const request = { connection, inputs: payload.inputs }
          const fields = yield* catalog.inputFields(user, action.id, request)
          const loaded = yield* ActionInputs.withChoices(
            fields,
            (field, page) => catalog.choices(user, action.id, field, { ...request, page }),
            { maxPages: 5 }
          )
          return loaded.flatMap((f) => (f._tag === "Fieldset" ? f.fields : [f])).map(toFieldInfo)
        }).pipe(Effect.catchTags({ ConnectionRequired: connectionNeeded(origin, true) }), Effect.mapError(mapOther))
      )
  })
)

/** The library's remaining errors: not found (404), or a failed dependency (502). */
const mapOther = <E extends { readonly _tag: string; readonly message: string }>(
  e: E
): NotFoundError | BackendFailed | Exclude<E, Errors.ZapierError> =>
  e._tag === "NotFound" || e._tag === "ActionNotFound"
    ? new NotFoundError({ message: e.message })
    : Errors.isZapierError(e)
      ? backend(e)
      : (e as Exclude<E, Errors.ZapierError>)

export const RunsLive = HttpApiBuilder.group(PartnerApi, "runs", (handlers) =>
  Effect.gen(function* () {
    const runs = yield* Runs
    const origin = yield* ConnectOrigin
    const offered = yield* OfferedApps
    return handlers
      .handle("start", ({ payload }) =>
        Effect.gen(function* () {
          const user = yield* CurrentUser
          if (!offered.some((a) => a.id === payload.app)) {
            return yield* new NotFoundError({ message: `This app does not offer ${payload.app}.` })
          }
          const run = yield* runs.start(user, payload)
          return run.view
        }).pipe(
          Effect.catchTags({
            ConnectionRequired: connectionNeeded(origin),
            InvalidInputs: invalidInputs
          }),
          Effect.mapError(mapOther)
        )
      )
      .handle("get", ({ path }) =>
        Effect.gen(function* () {
          const user = yield* CurrentUser
          const run = yield* runs.get(user, path.id)
          return yield* Option.match(run, {
            onNone: () => Effect.fail(new NotFoundError({ message: `No run ${path.id} of yours.` })),
            onSome: (r) => Effect.succeed(r.view)
          })
        }).pipe(Effect.mapError(mapOther))
      )
  })
)

const invalidInputs = (e: Errors.InvalidInputs) =>
  Effect.fail(
    new InvalidRunInputs({
      message: e.message,
      problems: e.problems.map((p) => ({ field: p.field, message: p.text }))
    })
  )

const toWatchView = (v: Watches.WatchView): WatchView => ({
  key: v.watch.key,
  app: v.watch.app,
  trigger: v.watch.trigger,
  inbox: v.watch.inbox,
  state: v.watch.state,
  running: v.running,
  ...(v.watch.problem !== undefined ? { problem: v.watch.problem } : {}),
  total: v.total,
  events: v.events.map((e) => ({
    messageId: e.messageId,
    receivedAt: e.receivedAt,
    ...(e.problem !== undefined ? { problem: e.problem } : { payload: e.payload })
  }))
})

export const TriggersLive = HttpApiBuilder.group(PartnerApi, "triggers", (handlers) =>
  Effect.gen(function* () {
    const triggers = yield* Triggers.Triggers
    const watches = yield* Watches.Watches
    const offered = yield* OfferedApps
    const origin = yield* ConnectOrigin
    const isOffered = offeredCheck(offered)
    const viewOf = (user: Domain.EndUser, key: string) =>
      Effect.flatMap(watches.list(user), (all) => {
        const found = all.find((v) => v.watch.key === key)
        return found === undefined
          ? Effect.fail(new Errors.StoreUnavailable({ operation: "read watch", reason: "the watch was not recorded" }))
          : Effect.succeed(toWatchView(found))
      })

    return handlers
      .handle("list", ({ path }) =>
        Effect.gen(function* () {
          const user = yield* CurrentUser
          yield* isOffered(path.app)
          const list = yield* triggers.list(user, path.app)
          return list.map(toActionView)
        }).pipe(Effect.mapError(mapOther))
      )
      .handle("watch", ({ payload }) =>
        Effect.gen(function* () {
          const user = yield* CurrentUser
          yield* isOffered(payload.app)
          const watch = yield* watches.watch(user, payload)
          return yield* viewOf(user, watch.key)
        }).pipe(
          Effect.catchTags({
            ConnectionRequired: connectionNeeded(origin),
            InvalidInputs: invalidInputs,
            InboxKeyConflict: () =>
              Effect.fail(
                new WatchConflict({
                  message: `You already watch ${payload.trigger} of ${payload.app} with other inputs; stop that watch first.`
                })
              )
          }),
          Effect.mapError(mapOther)
        )
      )
      .handle("watches", () =>
        Effect.gen(function* () {
          const user = yield* CurrentUser
          return (yield* watches.list(user)).map(toWatchView)
        }).pipe(Effect.mapError(backend))
      )
      .handle("stop", ({ path }) =>
        Effect.gen(function* () {
          const user = yield* CurrentUser
          const stopped = yield* watches.stop(user, path.key)
          if (!stopped) return yield* new NotFoundError({ message: `No watch ${path.key} of yours.` })
        }).pipe(Effect.mapError(mapOther))
      )
  })
)

/** The four groups. */
export const layer = Layer.mergeAll(SessionLive, AppsLive, RunsLive, TriggersLive)

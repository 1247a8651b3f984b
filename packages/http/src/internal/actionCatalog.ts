/**
 * `ActionCatalog` over `GET /v2/actions?app=…&action_type=…`. Nothing is cached: every `resolve` looks the action
 * up again, because the `id` Zapier returns is valid for one run only.
 *
 * The fields of an action come from `POST /v2/actions/{id}/inputs`, `…/inputs/{field}/choices?page=` and
 * `…/outputs`, each with the body `{data: {authentication, inputs}}`. These POSTs only read, so they are retried
 * like GETs. A list response is read as one envelope or as an array of envelopes (the OpenAPI declares the
 * latter; Zapier serves the former).
 *
 * Build it with `ZapierHttp.layer`.
 *
 * @example
 * ```ts
 * import { ActionCatalog, Domain } from "@effect-zapier/core"
 * import { Effect } from "effect"
 *
 * const user = Domain.EndUser.make({ userId: "u-42", tenantId: "acme" })
 * const app = Domain.AppId.make("slack")
 * const connection = Domain.ConnectionId.make("10002")
 *
 * const program = Effect.gen(function* () {
 *   const catalog = yield* ActionCatalog.ActionCatalog
 *   const action = yield* catalog.resolve(user, app, Domain.ActionKey.make("send_channel_message"), "WRITE")
 *   const fields = yield* catalog.inputFields(user, action.id, { connection, inputs: {} })
 * })
 * ```
 * @internal
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as ActionCatalog from "@effect-zapier/core/ActionCatalog"
import type { ActionId as ActionIdType, ActionKey, AppId, EndUser } from "@effect-zapier/core/Domain"
import {
  Action,
  ActionId,
  ActionKey as ActionKeySchema,
  ActionType,
  AppId as AppIdSchema
} from "@effect-zapier/core/Domain"
import { ActionNotFound } from "@effect-zapier/core/Errors"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Wire from "../Wire.js"
import type { Api } from "./api.js"
import { paginate } from "./api.js"
import { decodeBody, fromPlatform } from "./errors.js"
import { decodeChoicesPage, decodeInputFields, decodeOutputFields } from "./fields.js"

const decodePage = decodeBody(Wire.ActionsPage)
const isActionType = Schema.is(ActionType)

const toAction = (app: AppId, item: Wire.Action): ReadonlyArray<Action> => {
  const actionType = item.action_type.trim().toUpperCase()
  const id = item.id.trim()
  const key = item.key.trim()
  // Tolerance: an action of a type this library does not know, or without an id or key, is skipped.
  if (!isActionType(actionType) || id.length === 0 || key.length === 0) return []
  const itemApp = item.app?.trim()
  return [
    Action.make({
      id: ActionId.make(id),
      key: ActionKeySchema.make(key),
      app: itemApp ? AppIdSchema.make(itemApp) : app,
      actionType,
      title: item.title ?? key,
      isInstant: item.is_instant === true,
      ...(item.description ? { description: item.description } : {})
    })
  ]
}

/**
 * The action catalog of one layer.
 * @since 0.1.0
 * @category constructors
 */
export const make = (api: Api): ActionCatalog.Service => {
  const fetchAll = (user: EndUser, app: AppId, actionType: ActionType | undefined) =>
    paginate(api, user, {
      endpoint: "GET /v2/actions",
      path: "/v2/actions",
      query: actionType === undefined ? { app } : { app, action_type: actionType },
      resource: `app ${app}`,
      decode: (raw) =>
        Either.map(decodePage(raw.status, raw.body), (page) => ({
          items: page.data,
          next: page.links?.next,
          count: page.meta?.count
        }))
    }).pipe(
      Effect.map((items) =>
        items
          .flatMap((item) => toAction(app, item))
          .filter((a) => actionType === undefined || a.actionType === actionType)
      )
    )

  const list = Effect.fn("ActionCatalog.list")(function* (
    user: EndUser,
    app: AppId,
    options?: ActionCatalog.ListOptions
  ) {
    yield* Effect.annotateCurrentSpan("zapier.app", app)
    if (options?.actionType !== undefined) yield* Effect.annotateCurrentSpan("zapier.action_type", options.actionType)
    return yield* fetchAll(user, app, options?.actionType)
  })

  const resolve = Effect.fn("ActionCatalog.resolve")(function* (
    user: EndUser,
    app: AppId,
    key: ActionKey,
    actionType?: ActionType
  ) {
    yield* Effect.annotateCurrentSpan({ "zapier.app": app, "zapier.action_key": key })
    if (actionType !== undefined) yield* Effect.annotateCurrentSpan("zapier.action_type", actionType)
    const actions = yield* fetchAll(user, app, actionType)
    const found = actions.find((a) => a.key === key)
    if (found === undefined) {
      return yield* new ActionNotFound({ app, key, ...(actionType !== undefined ? { actionType } : {}) })
    }
    yield* Effect.annotateCurrentSpan("zapier.action_id", found.id)
    return found
  })

  const { settings } = api.env
  const fieldsPost = (url: string, request: ActionCatalog.FieldsRequest) =>
    HttpClientRequest.post(url).pipe(
      HttpClientRequest.bodyJson({ data: { authentication: request.connection, inputs: request.inputs ?? {} } }),
      Effect.mapError((e) => fromPlatform(e, settings.requestTimeout))
    )
  const actionUrl = (action: ActionIdType) => `${settings.apiUrl}/v2/actions/${encodeURIComponent(action)}`

  const inputFields = Effect.fn("ActionCatalog.inputFields")(function* (
    user: EndUser,
    action: ActionIdType,
    request: ActionCatalog.FieldsRequest
  ) {
    yield* Effect.annotateCurrentSpan("zapier.action_id", action)
    return yield* api.execute(user, {
      endpoint: "POST /v2/actions/{id}/inputs",
      resource: `action ${action}`,
      request: fieldsPost(`${actionUrl(action)}/inputs`, request),
      decode: (raw) => decodeInputFields(raw.status, raw.body)
    })
  })

  const choices = Effect.fn("ActionCatalog.choices")(function* (
    user: EndUser,
    action: ActionIdType,
    field: string,
    request: ActionCatalog.ChoicesRequest
  ) {
    const page = request.page ?? 1
    yield* Effect.annotateCurrentSpan({ "zapier.action_id": action, "zapier.input": field, "zapier.page": page })
    return yield* api.execute(user, {
      endpoint: "POST /v2/actions/{id}/inputs/{input}/choices",
      resource: `input ${field} of action ${action}`,
      request: fieldsPost(`${actionUrl(action)}/inputs/${encodeURIComponent(field)}/choices?page=${page}`, request),
      decode: (raw) => decodeChoicesPage(page, raw.status, raw.body)
    })
  })

  const outputFields = Effect.fn("ActionCatalog.outputFields")(function* (
    user: EndUser,
    action: ActionIdType,
    request: ActionCatalog.FieldsRequest
  ) {
    yield* Effect.annotateCurrentSpan("zapier.action_id", action)
    return yield* api.execute(user, {
      endpoint: "POST /v2/actions/{id}/outputs",
      resource: `action ${action}`,
      request: fieldsPost(`${actionUrl(action)}/outputs`, request),
      decode: (raw) => decodeOutputFields(raw.status, raw.body)
    })
  })

  return ActionCatalog.ActionCatalog.of({ list, resolve, inputFields, choices, outputFields })
}

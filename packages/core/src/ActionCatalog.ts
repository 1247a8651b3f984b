/**
 * Step 4a of the flow: an app's actions, the fresh action id every run needs, and what an action takes and gives
 * (its input fields, the choices of its dropdowns, its output fields; see `ActionInputs` for what to do with them).
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
 *   const action = yield* catalog.resolve(user, app, Domain.ActionKey.make("send_message"), "WRITE")
 *   const fields = yield* catalog.inputFields(user, action.id, { connection, inputs: {} })
 *   const channels = yield* catalog.choices(user, action.id, "channel", { connection, inputs: {}, page: 1 })
 * })
 * ```
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { ChoicesPage, Field, Inputs, OutputField } from "./ActionFields.js"
import type { Action, ActionId, ActionKey, ActionType, AppId, ConnectionId, EndUser } from "./Domain.js"
import type { ActionNotFound, RequestError } from "./Errors.js"

/** @since 0.1.0 */
export interface ListOptions {
  readonly actionType?: ActionType | undefined
}

/**
 * What the input, choices and output endpoints compute the fields from: the connection (`null` for apps without
 * authentication) and the inputs filled so far (default none).
 * @since 0.1.0
 */
export interface FieldsRequest {
  readonly connection: ConnectionId | null
  readonly inputs?: Inputs | undefined
}

/**
 * A {@link FieldsRequest} for one page of choices (pages are numbered from 1; default 1).
 * @since 0.1.0
 */
export interface ChoicesRequest extends FieldsRequest {
  readonly page?: number | undefined
}

/**
 * The errors of the field endpoints.
 * @since 0.1.0
 */
export type FieldsError = RequestError

/** @since 0.1.0 */
export interface Service {
  /** The app's actions (optionally of one type). */
  readonly list: (
    user: EndUser,
    app: AppId,
    options?: ListOptions
  ) => Effect.Effect<ReadonlyArray<Action>, RequestError>
  /** Looks the action up by its stable key on every call, returning a fresh `id` for one run. */
  readonly resolve: (
    user: EndUser,
    app: AppId,
    key: ActionKey,
    actionType?: ActionType
  ) => Effect.Effect<Action, RequestError | ActionNotFound>
  /**
   * The action's input fields for these inputs (`POST /v2/actions/{id}/inputs`): fields, info fields and
   * fieldsets, in Zapier's order. Fetch them again when a field that `invalidates` changes (`ActionInputs.change`).
   */
  readonly inputFields: (
    user: EndUser,
    action: ActionId,
    request: FieldsRequest
  ) => Effect.Effect<ReadonlyArray<Field>, FieldsError>
  /** One page of the choices of a `SELECT` field (`POST /v2/actions/{id}/inputs/{field}/choices?page=`). */
  readonly choices: (
    user: EndUser,
    action: ActionId,
    field: string,
    request: ChoicesRequest
  ) => Effect.Effect<ChoicesPage, FieldsError>
  /** The fields a run of the action returns, for these inputs (`POST /v2/actions/{id}/outputs`). */
  readonly outputFields: (
    user: EndUser,
    action: ActionId,
    request: FieldsRequest
  ) => Effect.Effect<ReadonlyArray<OutputField>, FieldsError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class ActionCatalog extends Context.Tag("@effect-zapier/core/ActionCatalog")<ActionCatalog, Service>() {}

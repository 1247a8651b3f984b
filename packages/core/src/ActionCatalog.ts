/**
 * Step 4a of the flow: an app's actions, and the fresh action id every run needs.
 *
 * @example
 * ```ts
 * import { ActionCatalog, Domain } from "@effect-zapier/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const catalog = yield* ActionCatalog.ActionCatalog
 *   const action = yield* catalog.resolve(user, app, Domain.ActionKey.make("send_message"), "WRITE")
 * })
 * ```
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { Action, ActionKey, ActionType, AppId, EndUser } from "./Domain.js"
import type { ActionNotFound, RequestError } from "./Errors.js"

/** @since 0.1.0 */
export interface ListOptions {
  readonly actionType?: ActionType | undefined
}

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
}

/**
 * @since 0.1.0
 * @category tags
 */
export class ActionCatalog extends Context.Tag("@effect-zapier/core/ActionCatalog")<ActionCatalog, Service>() {}

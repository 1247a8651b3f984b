/**
 * An app's triggers, for embedded triggers: a trigger is one of the app's `READ` actions. Its input fields,
 * dynamic choices and validation are those of `ActionCatalog` and `ActionInputs`, so a trigger's form is built
 * the same way as an action's. `subscription` validates the inputs and returns what `TriggerInboxes.ensure`
 * subscribes to.
 *
 * @example
 * ```ts
 * import { Domain, Triggers } from "@effect-zapier/core"
 * import { Effect } from "effect"
 *
 * const user = Domain.EndUser.make({ userId: "u-42", tenantId: "acme" })
 * const app = Domain.AppId.make("slack")
 * const connection = Domain.ConnectionId.make("10002")
 *
 * const program = Effect.gen(function* () {
 *   const triggers = yield* Triggers.Triggers
 *   const all = yield* triggers.list(user, app)
 *   const fields = yield* triggers.inputFields(user, app, all[0].key, { connection, inputs: {} })
 *   const subscription = yield* triggers.subscription(user, app, all[0].key, { connection, inputs: { channel: "C1" } })
 * })
 * ```
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { ActionCatalog } from "./ActionCatalog.js"
import * as ActionInputs from "./ActionInputs.js"
import type { Action, ActionKey, AppId, ConnectionId, EndUser } from "./Domain.js"
import { Subscription } from "./Domain.js"
import type { ActionNotFound, InvalidInputs, RequestError } from "./Errors.js"

/**
 * The connection and inputs of a trigger (`null` connection for apps without authentication).
 * @since 0.1.0
 */
export interface TriggerRequest {
  readonly connection: ConnectionId | null
  readonly inputs?: ActionInputs.Inputs | undefined
}

/** @since 0.1.0 */
export interface Service {
  /** The app's triggers (its `READ` actions). */
  readonly list: (user: EndUser, app: AppId) => Effect.Effect<ReadonlyArray<Action>, RequestError>
  /** The trigger's input fields for these inputs (fetch again when a field that `invalidates` changes). */
  readonly inputFields: (
    user: EndUser,
    app: AppId,
    trigger: ActionKey,
    request: TriggerRequest
  ) => Effect.Effect<ReadonlyArray<ActionInputs.Field>, RequestError | ActionNotFound>
  /**
   * Validates the inputs against the trigger's input fields (required fields, types, lists; with
   * `choices: true` also the dropdowns' choices) and returns the inbox subscription for them.
   */
  readonly subscription: (
    user: EndUser,
    app: AppId,
    trigger: ActionKey,
    request: TriggerRequest,
    options?: { readonly choices?: boolean | undefined }
  ) => Effect.Effect<Subscription, RequestError | ActionNotFound | InvalidInputs>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Triggers extends Context.Tag("@effect-zapier/core/Triggers")<Triggers, Service>() {}

/**
 * Builds the service over the action catalog (yielded once, here).
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.gen(function* () {
  const catalog = yield* ActionCatalog

  const list = Effect.fn("Triggers.list")(function* (user: EndUser, app: AppId) {
    yield* Effect.annotateCurrentSpan({ "zapier.app": app })
    return yield* catalog.list(user, app, { actionType: "READ" })
  })

  const inputFields = Effect.fn("Triggers.inputFields")(function* (
    user: EndUser,
    app: AppId,
    trigger: ActionKey,
    request: TriggerRequest
  ) {
    yield* Effect.annotateCurrentSpan({ "zapier.app": app, "zapier.trigger": trigger })
    const action = yield* catalog.resolve(user, app, trigger, "READ")
    return yield* catalog.inputFields(user, action.id, { connection: request.connection, inputs: request.inputs ?? {} })
  })

  const subscription = Effect.fn("Triggers.subscription")(function* (
    user: EndUser,
    app: AppId,
    trigger: ActionKey,
    request: TriggerRequest,
    options?: { readonly choices?: boolean | undefined }
  ) {
    yield* Effect.annotateCurrentSpan({ "zapier.app": app, "zapier.trigger": trigger })
    const inputs = request.inputs ?? {}
    const action = yield* catalog.resolve(user, app, trigger, "READ")
    yield* ActionInputs.check(catalog, user, action, { connection: request.connection, inputs }, options)
    return Subscription.make({ app, action: trigger, inputs, connection: request.connection })
  })

  return Triggers.of({ list, inputFields, subscription })
})

/**
 * The service as a layer.
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Triggers, never, ActionCatalog> = Layer.effect(Triggers, make)

/**
 * The branded identifiers of Zapier's objects: apps, connections, actions (the stable key and the per-lookup id)
 * and action runs. `Domain` re-exports them all, so `Domain.AppId` and `Identifiers.AppId` are the same schema.
 *
 * @example
 * ```ts
 * import { Identifiers } from "@effect-zapier/core"
 *
 * const app = Identifiers.AppId.make("5f6e2f0e-slack")
 * ```
 *
 * @since 0.2.0
 */
import * as Schema from "effect/Schema"

/**
 * A Zapier app id (the canonical id from `/v2/apps`, used in `app=` query parameters and Connect URLs).
 * @since 0.1.0
 * @category ids
 */
export const AppId = Schema.NonEmptyTrimmedString.pipe(Schema.brand("AppId"))
/** @since 0.1.0 */
export type AppId = typeof AppId.Type

/**
 * A connection ("authentication") id. Connect UI may report it as a number; it is always kept as a string.
 * @since 0.1.0
 * @category ids
 */
export const ConnectionId = Schema.NonEmptyTrimmedString.pipe(Schema.brand("ConnectionId"))
/** @since 0.1.0 */
export type ConnectionId = typeof ConnectionId.Type

/**
 * The stable developer key of an action (for example `send_channel_message`). Store this, never an {@link ActionId}.
 * @since 0.1.0
 * @category ids
 */
export const ActionKey = Schema.NonEmptyTrimmedString.pipe(Schema.brand("ActionKey"))
/** @since 0.1.0 */
export type ActionKey = typeof ActionKey.Type

/**
 * The id Zapier returns for one action lookup. It is unstable: fetch a fresh one before every run.
 * @since 0.1.0
 * @category ids
 */
export const ActionId = Schema.NonEmptyTrimmedString.pipe(Schema.brand("ActionId"))
/** @since 0.1.0 */
export type ActionId = typeof ActionId.Type

/**
 * The id of one action run.
 * @since 0.1.0
 * @category ids
 */
export const ActionRunId = Schema.NonEmptyTrimmedString.pipe(Schema.brand("ActionRunId"))
/** @since 0.1.0 */
export type ActionRunId = typeof ActionRunId.Type

/**
 * Step 0 of a workflow builder: find the app. Searches and lists Zapier's app catalog (`GET /v2/apps`) as one
 * end user sees it, a page at a time.
 *
 * @example
 * ```ts
 * import { Apps, Domain } from "@effect-zapier/core"
 * import { Effect } from "effect"
 *
 * const user = Domain.EndUser.make({ userId: "u-42", tenantId: "acme" })
 *
 * const program = Effect.gen(function* () {
 *   const apps = yield* Apps.Apps
 *   const first = yield* apps.search(user, "slack", { limit: 5 })
 *   const slack = first.apps[0]               // App { id, title, description?, image?, actionTypes }
 *   if (first.nextOffset !== undefined) yield* apps.search(user, "slack", { limit: 5, offset: first.nextOffset })
 * })
 * ```
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { ActionType, AppId, type EndUser } from "./Domain.js"
import type { NotFound, RequestError } from "./Errors.js"

/**
 * An app of Zapier's catalog. `actionTypes` are the kinds of action it has (`WRITE`, `SEARCH`, `READ`, …); `image`
 * is the URL of its logo.
 * @since 0.1.0
 * @category models
 */
export class App extends Schema.Class<App>("@effect-zapier/core/App")({
  id: AppId,
  title: Schema.String,
  description: Schema.optional(Schema.String),
  image: Schema.optional(Schema.String),
  actionTypes: Schema.Array(ActionType)
}) {}

/**
 * One page of apps. `count` is the total when Zapier gives it; `nextOffset` / `previousOffset` are the `offset`
 * of the next and previous pages (absent on the last and first).
 * @since 0.1.0
 * @category models
 */
export class AppsPage extends Schema.Class<AppsPage>("@effect-zapier/core/AppsPage")({
  apps: Schema.Array(App),
  offset: Schema.Number,
  count: Schema.optional(Schema.Number),
  nextOffset: Schema.optional(Schema.Number),
  previousOffset: Schema.optional(Schema.Number)
}) {}

/**
 * Which page of which apps.
 * @since 0.1.0
 */
export interface ListOptions {
  /** Free text matched against the apps' names. */
  readonly query?: string | undefined
  /** A category slug (for example `crm`). */
  readonly category?: string | undefined
  /** Only these apps. */
  readonly ids?: ReadonlyArray<AppId> | undefined
  /** Page size (Zapier's default is 10). */
  readonly limit?: number | undefined
  /** Where the page starts (default 0). */
  readonly offset?: number | undefined
}

/** @since 0.1.0 */
export interface Service {
  /** One page of the catalog, optionally filtered. */
  readonly list: (user: EndUser, options?: ListOptions) => Effect.Effect<AppsPage, RequestError>
  /** One page of the apps matching `query`. */
  readonly search: (
    user: EndUser,
    query: string,
    options?: Omit<ListOptions, "query">
  ) => Effect.Effect<AppsPage, RequestError>
  /** One app by id (`NotFound` when the catalog has none). */
  readonly get: (user: EndUser, app: AppId) => Effect.Effect<App, RequestError | NotFound>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Apps extends Context.Tag("@effect-zapier/core/Apps")<Apps, Service>() {}

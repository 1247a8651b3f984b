/**
 * `Apps` over `GET /v2/apps?query=…&category=…&ids=…&limit=…&offset=…`, a page at a time, with the user's access
 * token. The response is read as one envelope or as an array of envelopes, and the previous-page link as
 * `links.prev` or `links.previous` (the `/v2/apps` example of Zapier's API reference spells it `previous`).
 *
 * Build it with `ZapierHttp.layer`.
 *
 * @example
 * ```ts
 * import { Apps } from "@effect-zapier/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const apps = yield* Apps.Apps
 *   const page = yield* apps.search(user, "sheets", { limit: 5 })
 *   return page.apps.map((app) => `${app.title} (${app.actionTypes.join(", ")})`)
 * })
 * ```
 * @internal
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Apps from "@effect-zapier/core/Apps"
import type { AppId as AppIdType, EndUser } from "@effect-zapier/core/Domain"
import { ActionType, AppId } from "@effect-zapier/core/Domain"
import { NotFound } from "@effect-zapier/core/Errors"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Wire from "../Wire.js"
import type { Api } from "./api.js"
import { decodeBody } from "./errors.js"

const decodePage = decodeBody(Wire.AppsPage)
const isActionType = Schema.is(ActionType)

const text = (s: string | null | undefined): string | undefined => {
  const t = s?.trim()
  return t === undefined || t.length === 0 ? undefined : t
}

/**
 * Maps one wire app onto core's `App` (`undefined` for an item without an id). Action types this library does not
 * know are left out; `image` falls back to `images.url_128x128`.
 * @since 0.1.0
 * @category wire
 */
export const toApp = (item: Wire.App): Apps.App | undefined => {
  const id = text(item.id)
  if (id === undefined) return undefined
  const description = text(item.description)
  const fallback = item.images?.url_128x128
  const image = text(item.image) ?? (typeof fallback === "string" ? text(fallback) : undefined)
  const actionTypes = [
    ...new Set((item.action_types ?? []).map((t) => t.trim().toUpperCase()).filter((t) => isActionType(t)))
  ]
  return Apps.App.make({
    id: AppId.make(id),
    title: text(item.title) ?? id,
    ...(description !== undefined ? { description } : {}),
    ...(image !== undefined ? { image } : {}),
    actionTypes
  })
}

const offsetOfLink = (link: string | null | undefined): number | undefined => {
  if (typeof link !== "string" || link.length === 0) return undefined
  try {
    const raw = new URL(link, "https://api.zapier.com").searchParams.get("offset")
    const n = raw === null ? 0 : Number(raw)
    return Number.isInteger(n) && n >= 0 ? n : undefined
  } catch {
    return undefined
  }
}

/**
 * The apps service of one layer.
 * @since 0.1.0
 * @category constructors
 */
export const make = (api: Api): Apps.Service => {
  const { settings } = api.env

  const fetchPage = (user: EndUser, options: Apps.ListOptions | undefined) =>
    Effect.gen(function* () {
      const query: Record<string, string> = {}
      if (options?.query !== undefined && options.query.length > 0) query.query = options.query
      if (options?.category !== undefined && options.category.length > 0) query.category = options.category
      if (options?.ids !== undefined && options.ids.length > 0) query.ids = options.ids.join(",")
      if (options?.limit !== undefined) query.limit = String(Math.max(1, Math.floor(options.limit)))
      const requested = Math.max(0, Math.floor(options?.offset ?? 0))
      if (requested > 0) query.offset = String(requested)
      const page = yield* api.execute(user, {
        endpoint: "GET /v2/apps",
        request: Effect.succeed(HttpClientRequest.get(`${settings.apiUrl}/v2/apps`, { urlParams: query })),
        decode: (raw) => decodePage(raw.status, raw.body)
      })
      const apps = page.data.flatMap((item) => {
        const app = toApp(item)
        return app === undefined ? [] : [app]
      })
      const offset = typeof page.meta?.offset === "number" ? page.meta.offset : requested
      const limit = typeof page.meta?.limit === "number" ? page.meta.limit : (options?.limit ?? page.data.length)
      const count = typeof page.meta?.count === "number" ? page.meta.count : undefined
      const nextLink = page.links?.next
      const previousLink = page.links?.prev ?? page.links?.previous
      const nextOffset =
        typeof nextLink === "string" && nextLink.length > 0
          ? (offsetOfLink(nextLink) ?? offset + page.data.length)
          : count !== undefined && page.data.length > 0 && offset + page.data.length < count
            ? offset + page.data.length
            : undefined
      const previousOffset =
        typeof previousLink === "string" && previousLink.length > 0
          ? (offsetOfLink(previousLink) ?? Math.max(0, offset - limit))
          : offset > 0
            ? Math.max(0, offset - limit)
            : undefined
      return Apps.AppsPage.make({
        apps,
        offset,
        ...(count !== undefined ? { count } : {}),
        ...(nextOffset !== undefined && nextOffset > offset ? { nextOffset } : {}),
        ...(previousOffset !== undefined && previousOffset < offset ? { previousOffset } : {})
      })
    })

  const list = Effect.fn("Apps.list")(function* (user: EndUser, options?: Apps.ListOptions) {
    return yield* fetchPage(user, options)
  })

  const search = Effect.fn("Apps.search")(function* (
    user: EndUser,
    query: string,
    options?: Omit<Apps.ListOptions, "query">
  ) {
    yield* Effect.annotateCurrentSpan("zapier.query", query)
    return yield* fetchPage(user, { ...options, query })
  })

  const get = Effect.fn("Apps.get")(function* (user: EndUser, app: AppIdType) {
    yield* Effect.annotateCurrentSpan("zapier.app", app)
    const page = yield* fetchPage(user, { ids: [app], limit: 1 })
    const found = page.apps.find((a) => a.id === app)
    if (found === undefined) return yield* new NotFound({ endpoint: "GET /v2/apps", resource: `app ${app}` })
    return found
  })

  return Apps.Apps.of({ list, search, get })
}

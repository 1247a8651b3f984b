/**
 * Area: the app catalog (`GET /v2/apps`): the model's listing, its route, core's `Apps` in memory, and the control
 * method that adds an app.
 *
 * @internal
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import { Apps, type Domain, Errors } from "@effect-zapier/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import type { ClientKit } from "../client.js"
import type { AppRecord, Kit } from "../model/state.js"
import { toAppRecord } from "../model/state.js"
import type { Routes, ServerKit } from "../server/kit.js"
import { Count, decodeQuery, json, OptionalString } from "../server/kit.js"
import type * as FZ from "../types.js"

/** The endpoint of this area, as the ledger and fault rules name it. */
export const endpoints = {
  apps: "GET /v2/apps"
} as const

/** The control methods of this area. */
export interface AppsControl {
  /** Adds (or replaces) an app of the catalog. */
  readonly addApp: (app: FZ.AppSeed) => Effect.Effect<void>
}

/** The model side: the catalog's listing, and `addApp`. */
export const model = (kit: Kit) => {
  const { state } = kit

  const listApps = (query: {
    readonly ids?: ReadonlyArray<string> | undefined
    readonly search?: string | undefined
    readonly category?: string | undefined
    readonly limit: number
    readonly offset: number
  }) =>
    Effect.map(Ref.get(state), (s) => {
      const search = query.search?.toLowerCase()
      const all = s.apps.filter(
        (a) =>
          (query.ids === undefined || query.ids.includes(a.id)) &&
          (search === undefined || a.title.toLowerCase().includes(search) || a.id.includes(search)) &&
          (query.category === undefined || a.categories.includes(query.category))
      )
      return { items: all.slice(query.offset, query.offset + query.limit), count: all.length }
    })

  const control: AppsControl = {
    addApp: Effect.fn("FakeZapier.addApp")(function* (app: FZ.AppSeed) {
      const record = toAppRecord(app)
      yield* Ref.update(state, (s) => ({
        ...s,
        apps: s.apps.some((a) => a.id === record.id)
          ? s.apps.map((a) => (a.id === record.id ? record : a))
          : [...s.apps, record]
      }))
    })
  }
  return { listApps, control }
}

/** The model side of this area. */
export type Model = ReturnType<typeof model>

const AppsQuery = Schema.Struct({
  ids: OptionalString,
  query: OptionalString,
  category: OptionalString,
  limit: Schema.optional(Count),
  offset: Schema.optional(Count)
})

/** `GET /v2/apps`. */
export const routes = (server: ServerKit, m: Model): Routes => {
  const { api, url } = server
  const page_ = server.page

  const apps = api(endpoints.apps, () =>
    Effect.gen(function* () {
      const q = yield* decodeQuery(AppsQuery)
      const limit = Math.min(q.limit ?? 10, 100)
      const offset = q.offset ?? 0
      const ids = q.ids
        ?.split(",")
        .map((s) => s.trim())
        .filter((s) => s.length > 0)
      const { items, count } = yield* m.listApps({ ids, search: q.query, category: q.category, limit, offset })
      const params: Record<string, string> = {}
      if (q.ids !== undefined) params.ids = q.ids
      if (q.query !== undefined) params.query = q.query
      if (q.category !== undefined) params.category = q.category
      const paged = page_("/v2/apps", count, limit, offset, params)
      return json({
        // Zapier's /v2/apps example names the previous page `previous`; the shared Links schema says `prev`.
        links: { next: paged.links.next, previous: paged.links.prev },
        meta: paged.meta,
        data: items.map((a) => ({
          id: a.id,
          type: "app",
          title: a.title,
          description: a.description ?? "",
          image: `${url}/static/${encodeURIComponent(a.id)}/128.png`,
          images: {
            url_16x16: `${url}/static/${encodeURIComponent(a.id)}/16.png`,
            url_32x32: `${url}/static/${encodeURIComponent(a.id)}/32.png`,
            url_64x64: `${url}/static/${encodeURIComponent(a.id)}/64.png`,
            url_128x128: `${url}/static/${encodeURIComponent(a.id)}/128.png`
          },
          hex_color: "ff4f00",
          categories: a.categories.map((slug) => ({ slug })),
          action_types: [...new Set(a.actions.map((x) => x.actionType))],
          links: { connect_new_authentication: `${url}/to/${encodeURIComponent(a.id)}` }
        }))
      })
    })
  )

  return [HttpRouter.makeRoute("GET", "/v2/apps", apps)]
}

const toApp = (a: AppRecord): Apps.App =>
  Apps.App.make({
    id: a.id,
    title: a.title,
    ...(a.description !== undefined && a.description.length > 0 ? { description: a.description } : {}),
    actionTypes: [...new Set(a.actions.map((x) => x.actionType))]
  })

/** Core's `Apps`, in memory. */
export const services = (client: ClientKit, m: Model) => {
  const { request } = client

  const listApps = (user: Domain.EndUser, options: Apps.ListOptions | undefined) =>
    Effect.gen(function* () {
      const limit = Math.max(1, Math.min(options?.limit ?? 10, 100))
      const offset = Math.max(0, options?.offset ?? 0)
      const page = yield* request(
        { method: "GET", endpoint: endpoints.apps, path: "/v2/apps" },
        user,
        m.listApps({
          ids: options?.ids,
          search: options?.query,
          category: options?.category,
          limit,
          offset
        })
      ).pipe(Effect.catchTag("RunOutcomeUnknown", Effect.die))
      return Apps.AppsPage.make({
        apps: page.items.map(toApp),
        offset,
        count: page.count,
        ...(offset + page.items.length < page.count ? { nextOffset: offset + page.items.length } : {}),
        ...(offset > 0 ? { previousOffset: Math.max(0, offset - limit) } : {})
      })
    })

  const apps = Apps.Apps.of({
    list: Effect.fn("Apps.list")(function* (user: Domain.EndUser, options?: Apps.ListOptions) {
      return yield* listApps(user, options)
    }),
    search: Effect.fn("Apps.search")(function* (
      user: Domain.EndUser,
      query: string,
      options?: Omit<Apps.ListOptions, "query">
    ) {
      return yield* listApps(user, { ...options, query })
    }),
    get: Effect.fn("Apps.get")(function* (user: Domain.EndUser, app: Domain.AppId) {
      const page = yield* listApps(user, { ids: [app], limit: 1 })
      const found = page.apps.find((a) => a.id === app)
      if (found === undefined) return yield* new Errors.NotFound({ endpoint: endpoints.apps, resource: `app ${app}` })
      return found
    })
  })

  return Context.make(Apps.Apps, apps)
}

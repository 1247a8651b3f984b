import { assert, describe, it } from "@effect/vitest"
import { ActionCatalog, ActionInputs, Apps, Domain } from "@effect-zapier/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { ZapierHttp } from "../src/index.js"
import {
  type Answer,
  driveClock,
  failureOf,
  fakeZapier,
  generateKeys,
  json,
  options,
  type Recorded,
  user
} from "./kit.js"

const keys = await generateKeys("ES256")
const action = Domain.ActionId.make("uag:87b1c14e-ef30-43d5-9395-6c6514dbb123")
const connection = Domain.ConnectionId.make("928117")

const provide = (api: (request: Recorded) => Answer) => {
  const zapier = fakeZapier(api)
  return {
    zapier,
    layer: ZapierHttp.layer(options(keys)).pipe(Layer.provide(zapier.layer))
  }
}

/** The input field example of Zapier's API reference, plus the other kinds and the tolerated oddities. */
const inputsBody = {
  links: { next: null, prev: null },
  meta: { count: 5, limit: null, offset: 0 },
  data: [
    {
      type: "input_field",
      id: "input",
      default_value: "",
      depends_on: [],
      description: "Use the Input Data fields above.",
      invalidates_input_fields: false,
      is_required: false,
      placeholder: "",
      title: "Input Data",
      value_type: "OBJECT"
    },
    {
      type: "input_field",
      id: "spreadsheet",
      default_value: "",
      depends_on: [],
      description: "The spreadsheet",
      format: "select",
      invalidates_input_fields: true,
      is_required: true,
      placeholder: "",
      title: "Spreadsheet",
      value_type: "STRING",
      items: {}
    },
    { type: "info_field", id: "help", description: "Pick a spreadsheet first." },
    {
      type: "fieldset",
      id: "line_items",
      title: "Line Items",
      fields: [
        {
          type: "input_field",
          id: "qty",
          default_value: 1,
          depends_on: ["spreadsheet"],
          is_required: true,
          title: "Quantity",
          value_type: "ARRAY",
          items: { type: "integer" }
        },
        { type: "input_field", id: "odd", title: "Odd", value_type: "DECIMAL128", format: "SLIDER" }
      ]
    },
    { id: "no_type_but_shaped_like_info", description: "Shown as text." }
  ]
}

describe("HttpActionCatalog fields", () => {
  it.effect(
    "POST /v2/actions/{id}/inputs sends {data: {authentication, inputs}} and decodes every kind of field",
    () => {
      const { layer, zapier } = provide(() => json(inputsBody))
      return Effect.gen(function* () {
        const catalog = yield* ActionCatalog.ActionCatalog
        const fields = yield* catalog.inputFields(user, action, { connection, inputs: { spreadsheet: "my_sheet" } })
        const request = zapier.requests.at(-1)!
        assert.strictEqual(request.method, "POST")
        assert.strictEqual(request.url.href, `https://api.zapier.com/v2/actions/${encodeURIComponent(action)}/inputs`)
        assert.deepStrictEqual(request.json, {
          data: { authentication: "928117", inputs: { spreadsheet: "my_sheet" } }
        })
        assert.deepStrictEqual(
          fields.map((f) => [f._tag, f.id]),
          [
            ["InputField", "input"],
            ["InputField", "spreadsheet"],
            ["InfoField", "help"],
            ["Fieldset", "line_items"],
            ["InfoField", "no_type_but_shaped_like_info"]
          ]
        )
        const [input, spreadsheet, qty, odd] = ActionInputs.inputFieldsOf(fields)
        assert.deepStrictEqual(
          input,
          ActionInputs.InputField.make({
            id: "input",
            title: "Input Data",
            description: "Use the Input Data fields above.",
            valueType: "OBJECT"
          })
        )
        assert.deepInclude(spreadsheet, { format: "SELECT", required: true, invalidates: true, valueType: "STRING" })
        assert.deepInclude(qty, { list: true, valueType: "INTEGER", default: "1", required: true })
        assert.deepStrictEqual(qty!.dependsOn, ["spreadsheet"])
        // A format or value type this library does not know is left out; the field stays.
        assert.isUndefined(odd!.format)
        assert.isUndefined(odd!.valueType)
        // Nothing is cached: every call asks again.
        yield* catalog.inputFields(user, action, { connection: null })
        assert.deepStrictEqual(zapier.requests.at(-1)!.json, { data: { authentication: null, inputs: {} } })
      }).pipe(Effect.provide(layer))
    }
  )

  it.effect("an element that is no field is an InvalidResponse, not a silently missing field", () => {
    const { layer } = provide(() => json({ data: [{ type: "input_field", title: "No id" }] }))
    return Effect.gen(function* () {
      const catalog = yield* ActionCatalog.ActionCatalog
      const exit = yield* driveClock(catalog.inputFields(user, action, { connection }))
      const error = failureOf(exit)
      if (error?._tag !== "InvalidResponse") return assert.fail(`expected InvalidResponse, got ${error?._tag}`)
      assert.include(error.message, "data[0]")
    }).pipe(Effect.provide(layer))
  })

  it.effect("choices: ?page=, one envelope or an array of envelopes (as declared), next page from links.next", () => {
    const page = (n: number, next: boolean) => ({
      data: [
        { id: `c${n}`, type: "choice", label: `Choice ${n}`, value: `v${n}` },
        { id: 7, type: "choice", label: null, value: 7 }
      ],
      links: {
        next: next ? `https://api.zapier.com/v2/actions/x/inputs/lead/choices?page=${n + 1}` : null,
        prev: null
      },
      meta: { page: n }
    })
    const { layer, zapier } = provide((request) => {
      const n = Number(request.url.searchParams.get("page"))
      // The first page as the OpenAPI declares it (an array), the second as Zapier serves it (one envelope).
      return json(n === 1 ? [page(1, true)] : page(n, false))
    })
    return Effect.gen(function* () {
      const catalog = yield* ActionCatalog.ActionCatalog
      const first = yield* catalog.choices(user, action, "lead id", { connection, inputs: { a: 1 } })
      assert.strictEqual(
        zapier.requests.at(-1)!.url.href,
        `https://api.zapier.com/v2/actions/${encodeURIComponent(action)}/inputs/lead%20id/choices?page=1`
      )
      assert.deepStrictEqual(zapier.requests.at(-1)!.json, { data: { authentication: "928117", inputs: { a: 1 } } })
      assert.deepStrictEqual(
        first,
        ActionInputs.ChoicesPage.make({
          choices: [
            ActionInputs.Choice.make({ id: "c1", value: "v1", label: "Choice 1" }),
            ActionInputs.Choice.make({ id: "7", value: "7" })
          ],
          page: 1,
          nextPage: 2
        })
      )
      const second = yield* catalog.choices(user, action, "lead id", { connection, page: 2 })
      assert.strictEqual(second.page, 2)
      assert.isUndefined(second.nextPage)
    }).pipe(Effect.provide(layer))
  })

  it.effect("outputs: POST /v2/actions/{id}/outputs", () => {
    const { layer, zapier } = provide(() =>
      json({
        links: { next: null, prev: null },
        meta: { count: 2, limit: null, offset: 0 },
        data: [
          { type: "output_field", id: "id", title: "ID", sample: 123 },
          { type: "output_field", id: "name", title: "", sample: null }
        ]
      })
    )
    return Effect.gen(function* () {
      const catalog = yield* ActionCatalog.ActionCatalog
      const outputs = yield* catalog.outputFields(user, action, { connection })
      assert.strictEqual(zapier.requests.at(-1)!.path, `/v2/actions/${encodeURIComponent(action)}/outputs`)
      assert.deepStrictEqual(outputs, [
        ActionInputs.OutputField.make({ id: "id", title: "ID", sample: 123 }),
        ActionInputs.OutputField.make({ id: "name" })
      ])
    }).pipe(Effect.provide(layer))
  })
})

describe("HttpApps", () => {
  const appItem = (id: string, extra: Record<string, unknown> = {}) => ({
    id,
    type: "app",
    title: `App ${id}`,
    description: "",
    images: { url_128x128: `https://cdn.example/${id}/128.png` },
    action_types: ["write", "SEARCH", "SOMETHING_NEW"],
    ...extra
  })

  it.effect("lists a page with query, category, ids, limit and offset; reads links.previous and links.prev", () => {
    const { layer, zapier } = provide((request) => {
      const offset = Number(request.url.searchParams.get("offset") ?? "0")
      return json({
        links: {
          next: offset === 0 ? "https://api.zapier.com/v2/apps?limit=2&offset=2" : null,
          ...(offset === 0 ? { previous: null } : { prev: "https://api.zapier.com/v2/apps?limit=2&offset=0" })
        },
        meta: { count: 3, limit: 2, offset },
        data: offset === 0 ? [appItem("a", { image: "https://cdn.example/a.png" }), appItem("b")] : [appItem("c")]
      })
    })
    return Effect.gen(function* () {
      const apps = yield* Apps.Apps
      const first = yield* apps.list(user, {
        query: "crm",
        category: "sales",
        ids: [Domain.AppId.make("a"), Domain.AppId.make("b")],
        limit: 2
      })
      assert.deepStrictEqual(Object.fromEntries(zapier.requests.at(-1)!.url.searchParams), {
        query: "crm",
        category: "sales",
        ids: "a,b",
        limit: "2"
      })
      assert.deepStrictEqual(
        first,
        Apps.AppsPage.make({
          apps: [
            Apps.App.make({
              id: Domain.AppId.make("a"),
              title: "App a",
              image: "https://cdn.example/a.png",
              actionTypes: ["WRITE", "SEARCH"]
            }),
            Apps.App.make({
              id: Domain.AppId.make("b"),
              title: "App b",
              image: "https://cdn.example/b/128.png",
              actionTypes: ["WRITE", "SEARCH"]
            })
          ],
          offset: 0,
          count: 3,
          nextOffset: 2
        })
      )
      const second = yield* apps.search(user, "crm", { limit: 2, offset: 2 })
      assert.strictEqual(zapier.requests.at(-1)!.url.searchParams.get("offset"), "2")
      assert.strictEqual(second.previousOffset, 0)
      assert.isUndefined(second.nextOffset)
    }).pipe(Effect.provide(layer))
  })

  it.effect("get finds one app by id, or fails NotFound; an array of envelopes is read too", () => {
    const { layer, zapier } = provide((request) =>
      json(request.url.searchParams.get("ids") === "a" ? [{ data: [appItem("a")] }] : { data: [] })
    )
    return Effect.gen(function* () {
      const apps = yield* Apps.Apps
      const found = yield* apps.get(user, Domain.AppId.make("a"))
      assert.strictEqual(found.title, "App a")
      assert.strictEqual(zapier.requests.at(-1)!.url.searchParams.get("limit"), "1")
      const missing = yield* Effect.flip(apps.get(user, Domain.AppId.make("zz")))
      assert.strictEqual(missing._tag, "NotFound")
      assert.include(missing.message, "app zz")
    }).pipe(Effect.provide(layer))
  })
})

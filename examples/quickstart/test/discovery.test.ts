/**
 * What a workflow builder does before it runs anything (apps, actions, input fields, choices, the dynamic-field
 * loop, validation, the JSON Schema), run twice: against FakeZapier.layer (in memory) and against
 * FakeZapierServer through ZapierHttp over loopback HTTP, wired as src/main.ts wires the quickstart. The same
 * assertions hold for both, so the HTTP client reads the server's wire shapes (quirks included) as the in-memory
 * model means them.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ActionCatalog, ActionInputs, Apps, ConnectionStore, Domain, EmbeddedActions } from "@effect-zapier/core"
import { ZapierHttp } from "@effect-zapier/http"
import { FakeZapier, FakeZapierServer, PartnerKey } from "@effect-zapier/testing"
import { Ajv2020 } from "ajv/dist/2020.js"
import { Effect, Layer } from "effect"

const { sample } = FakeZapier
const user = sample.user

type Zapier = ActionCatalog.ActionCatalog | Apps.Apps | EmbeddedActions.EmbeddedActions | FakeZapier.FakeZapier

const withProgram = <E>(services: Layer.Layer<ZapierHttp.Services | FakeZapier.FakeZapier, E>) =>
  EmbeddedActions.layer.pipe(Layer.provideMerge(Layer.merge(services, ConnectionStore.layerMemory)))

const inMemory: Layer.Layer<Zapier, FakeZapier.InvalidSeed> = withProgram(FakeZapier.layer(FakeZapier.sampleSeed))

const overHttp: Layer.Layer<Zapier, unknown> = withProgram(
  Layer.unwrapEffect(
    Effect.map(PartnerKey.generate({ alg: "ES256" }), (key) => {
      const Server = FakeZapierServer.layer({ seed: PartnerKey.register(FakeZapier.sampleSeed, key) })
      const Client = Layer.unwrapEffect(
        Effect.map(FakeZapierServer.FakeZapierServer, (server) =>
          ZapierHttp.layer(FakeZapierServer.clientOptions(server, key))
        )
      )
      return Client.pipe(Layer.provide(NodeHttpClient.layerUndici), Layer.provideMerge(Server))
    })
  )
)

const services = Effect.all({
  apps: Apps.Apps,
  catalog: ActionCatalog.ActionCatalog,
  actions: EmbeddedActions.EmbeddedActions,
  zapier: FakeZapier.FakeZapier
})

/** A connection of the sample user to `app`, and a fresh id of `key` (WRITE). */
const prepare = (app: Domain.AppId, key: Domain.ActionKey) =>
  Effect.gen(function* () {
    const { catalog, zapier } = yield* services
    const connection = yield* zapier.addConnection(user, app)
    const action = yield* catalog.resolve(user, app, key, "WRITE")
    return { connection, action }
  })

const ids = (fields: ReadonlyArray<ActionInputs.Field>) => ActionInputs.inputFieldsOf(fields).map((f) => f.id)

const suite = (name: string, layer: Layer.Layer<Zapier, unknown>) =>
  describe(name, () => {
    it.live("discovers apps a page at a time, by query, category and id", () =>
      Effect.gen(function* () {
        const { apps } = yield* services
        const first = yield* apps.list(user, { limit: 2 })
        assert.deepStrictEqual(
          first.apps.map((a) => a.id),
          [sample.slack, sample.sheets]
        )
        assert.strictEqual(first.count, 3)
        assert.strictEqual(first.nextOffset, 2)
        assert.isUndefined(first.previousOffset)
        const second = yield* apps.list(user, { limit: 2, offset: first.nextOffset })
        assert.deepStrictEqual(
          second.apps.map((a) => a.id),
          [sample.formatter]
        )
        assert.strictEqual(second.previousOffset, 0, "links.previous (the /v2/apps spelling) is understood")
        assert.isUndefined(second.nextOffset)
        const found = yield* apps.search(user, "sheets")
        assert.deepStrictEqual(
          found.apps.map((a) => [a.id, a.title, a.actionTypes]),
          [[sample.sheets, "Google Sheets", ["WRITE"]]]
        )
        const chat = yield* apps.list(user, { category: "team-chat" })
        assert.deepStrictEqual(
          chat.apps.map((a) => a.id),
          [sample.slack]
        )
        const slack = yield* apps.get(user, sample.slack)
        assert.strictEqual(slack.description, "Slack is a channel-based messaging platform.")
        assert.deepStrictEqual([...slack.actionTypes].sort(), ["READ", "SEARCH", "WRITE"])
        const missing = yield* Effect.flip(apps.get(user, Domain.AppId.make("no-such-app")))
        assert.strictEqual(missing._tag, "NotFound")
      }).pipe(Effect.provide(layer))
    )

    it.live("lists an action's input fields (with info fields and fieldsets) and output fields", () =>
      Effect.gen(function* () {
        const { catalog } = yield* services
        const { action, connection } = yield* prepare(sample.slack, sample.sendChannelMessage)
        const fields = yield* catalog.inputFields(user, action.id, { connection: connection.id })
        assert.deepStrictEqual(
          fields.map((f) => [f._tag, f.id]),
          [
            ["InputField", "channel"],
            ["InputField", "text"],
            ["InputField", "send_as_bot"],
            ["InfoField", "posting_as"],
            ["Fieldset", "advanced"]
          ]
        )
        const [channel, text, bot] = ActionInputs.inputFieldsOf(fields)
        assert.deepInclude(channel, { required: true, format: "SELECT", valueType: "STRING", list: false })
        assert.deepInclude(text, { required: true, format: "MULTILINE", placeholder: "Hello from the workflow" })
        assert.deepInclude(bot, { valueType: "BOOLEAN", invalidates: true, default: "false", required: false })
        assert.isUndefined(text!.default)
        const mentions = ActionInputs.inputFieldsOf(fields).find((f) => f.id === "mentions")
        assert.deepInclude(mentions, { list: true, valueType: "STRING" })
        const outputs = yield* catalog.outputFields(user, action.id, { connection: connection.id })
        assert.deepStrictEqual(
          outputs.map((o) => [o.id, o.sample]),
          [
            ["ok", true],
            ["channel", "#general"],
            ["text", "Hello"],
            ["ts", "1711900000.000100"]
          ]
        )
        const unknown = yield* Effect.flip(
          catalog.inputFields(user, Domain.ActionId.make("uag:made-up"), { connection: connection.id })
        )
        assert.strictEqual(unknown._tag, "NotFound")
      }).pipe(Effect.provide(layer))
    )

    it.live("pages through the choices of a dropdown", () =>
      Effect.gen(function* () {
        const { catalog } = yield* services
        const { action, connection } = yield* prepare(sample.slack, sample.sendChannelMessage)
        const request = { connection: connection.id, inputs: {} }
        const first = yield* catalog.choices(user, action.id, "channel", request)
        assert.strictEqual(first.page, 1)
        assert.strictEqual(first.nextPage, 2)
        assert.deepStrictEqual(
          first.choices[0],
          ActionInputs.Choice.make({ id: "C001", value: "#general", label: "general" })
        )
        const last = yield* catalog.choices(user, action.id, "channel", { ...request, page: 3 })
        assert.strictEqual(last.choices.length, 3)
        assert.isUndefined(last.nextPage)
        const all = yield* ActionInputs.allChoices(
          (field, page) => catalog.choices(user, action.id, field, { ...request, page }),
          "channel"
        )
        assert.isTrue(all.complete)
        assert.deepStrictEqual(
          all.choices.map((c) => c.value),
          FakeZapier.sampleChannels
        )
        const notSelect = yield* Effect.flip(catalog.choices(user, action.id, "text", request))
        assert.strictEqual(notSelect._tag, "BadRequest")
      }).pipe(Effect.provide(layer))
    )

    it.live("follows the dynamic-field loop: fields appear, are cleared and re-fetched as values change", () =>
      Effect.gen(function* () {
        const { catalog, zapier } = yield* services
        const { action, connection } = yield* prepare(sample.sheets, sample.createSpreadsheetRow)
        const load = ActionInputs.loader(catalog, user, action, connection.id)
        yield* zapier.resetLedger
        let form = yield* ActionInputs.open(load)
        assert.deepStrictEqual(ids(form.fields), ["spreadsheet"])
        form = yield* ActionInputs.change(load, form, { spreadsheet: "sheet-leads" })
        assert.deepStrictEqual(ids(form.fields), ["spreadsheet", "worksheet"])
        const worksheets = yield* catalog.choices(user, action.id, "worksheet", {
          connection: connection.id,
          inputs: form.inputs
        })
        assert.deepStrictEqual(
          worksheets.choices.map((c) => [c.value, c.label]),
          [
            ["ws-1", "Sheet1"],
            ["ws-2", "Sheet2"]
          ]
        )
        form = yield* ActionInputs.change(load, form, { worksheet: "ws-1" })
        assert.deepStrictEqual(ids(form.fields), ["spreadsheet", "worksheet", "COL$A", "COL$B", "COL$C"])
        assert.strictEqual(ActionInputs.inputFieldsOf(form.fields)[4]!.valueType, "NUMBER")
        form = yield* ActionInputs.change(load, form, { COL$A: "Ada", COL$C: 12 })
        form = yield* ActionInputs.change(load, form, { spreadsheet: "sheet-budget" })
        assert.deepStrictEqual(form.cleared, ["worksheet", "COL$A", "COL$B", "COL$C"])
        assert.deepStrictEqual(form.inputs, { spreadsheet: "sheet-budget" })
        assert.deepStrictEqual(ids(form.fields), ["spreadsheet", "worksheet"])
        const ledger = yield* zapier.ledger
        assert.strictEqual(
          FakeZapier.requestsByEndpoint(ledger)[FakeZapier.Endpoint.inputs],
          4,
          "open, spreadsheet, worksheet, spreadsheet again: column values cost no request"
        )
        // Slack: a boolean that invalidates brings two fields with it.
        const slack = yield* prepare(sample.slack, sample.sendChannelMessage)
        const slackLoad = ActionInputs.loader(catalog, user, slack.action, slack.connection.id)
        const bot = yield* ActionInputs.change(slackLoad, yield* ActionInputs.open(slackLoad), { send_as_bot: true })
        assert.includeMembers(ids(bot.fields), ["bot_name", "bot_icon"])
      }).pipe(Effect.provide(layer))
    )

    it.live("validates before a run is created, listing every problem by field", () =>
      Effect.gen(function* () {
        const { actions, zapier } = yield* services
        const connection = yield* zapier.addConnection(user, sample.slack)
        const start = (inputs: ActionInputs.Inputs) =>
          actions.start({
            user,
            app: sample.slack,
            action: sample.sendChannelMessage,
            inputs,
            connection: connection.id,
            validateChoices: true
          })
        const error = yield* Effect.flip(
          start({ channel: "#nope", send_as_bot: true, unfurl_links: "no", mentions: ["U1", 2] })
        )
        if (error._tag !== "InvalidInputs") return assert.fail(`expected InvalidInputs, got ${error._tag}`)
        assert.deepStrictEqual(
          error.problems.map((p) => [p.field, p.kind]),
          [
            ["channel", "not_a_choice"],
            ["text", "missing"],
            ["bot_name", "missing"],
            ["unfurl_links", "wrong_type"],
            ["mentions", "wrong_type"]
          ]
        )
        assert.include(error.message, "send_channel_message")
        assert.include(error.message, "unfurl_links: expected a boolean, got a string of 2 characters")
        assert.notInclude(error.message, '"no"', "input values never appear in messages (they reach logs and spans)")
        const single = yield* Effect.flip(start({ channel: "#general", text: "Hi", mentions: "U1" }))
        assert.deepStrictEqual(
          single._tag === "InvalidInputs" ? single.problems.map((p) => [p.field, p.kind, p.expected]) : single._tag,
          [["mentions", "not_a_list", "strings"]]
        )
        assert.strictEqual((yield* zapier.ledger).runs.length, 0)
        const handle = yield* start({ channel: "#general", text: "Hello", send_as_bot: true, bot_name: "Zap" })
        assert.strictEqual((yield* zapier.run(handle.runId)).status, "waiting")
      }).pipe(Effect.provide(layer))
    )

    it.live("describes the inputs as a JSON Schema that a real validator agrees with", () =>
      Effect.gen(function* () {
        const { catalog } = yield* services
        const { action, connection } = yield* prepare(sample.slack, sample.sendChannelMessage)
        const request = { connection: connection.id, inputs: { send_as_bot: true } }
        const fields = yield* ActionInputs.withChoices(
          yield* catalog.inputFields(user, action.id, request),
          (field, page) => catalog.choices(user, action.id, field, { ...request, page })
        )
        const schema = ActionInputs.toJsonSchema(fields, { title: action.title })
        const ajv = new Ajv2020({ allErrors: true })
        const check = ajv.compile(schema)
        const properties = schema.properties as Record<string, { readonly oneOf?: ReadonlyArray<unknown> }>
        assert.strictEqual(properties.channel?.oneOf?.length, 23)
        assert.deepStrictEqual(schema.required, ["channel", "text", "bot_name"])
        const cases: ReadonlyArray<Record<string, unknown>> = [
          { channel: "#general", text: "Hi", bot_name: "Zap" },
          { channel: "#general", text: "Hi", bot_name: "Zap", mentions: ["U1"], unfurl_links: false },
          { channel: "#general", text: "Hi" },
          { channel: "#nope", text: "Hi", bot_name: "Zap" },
          { channel: "#general", text: "", bot_name: "Zap" },
          { channel: "#general", text: "Hi", bot_name: "Zap", mentions: "U1" },
          { channel: "#general", text: "Hi", bot_name: "Zap", send_as_bot: "yes" }
        ]
        const verdicts = cases.map((inputs) => {
          const bySchema = check(inputs) as boolean
          assert.strictEqual(bySchema, ActionInputs.problems(fields, inputs).length === 0, JSON.stringify(inputs))
          return bySchema
        })
        assert.deepStrictEqual(verdicts, [true, true, false, false, false, false, false])
      }).pipe(Effect.provide(layer))
    )
  })

suite("action discovery against FakeZapier.layer", inMemory)
suite("action discovery against FakeZapierServer over HTTP", overHttp)

import { assert, describe, it } from "@effect/vitest"
import {
  ActionCatalog,
  ActionInputs,
  Apps,
  ConnectionStore,
  Domain,
  EmbeddedActions,
  Errors
} from "@effect-zapier/core"
import { FakeZapier } from "@effect-zapier/testing"
import { Ajv2020 } from "ajv/dist/2020.js"
import { Effect, Either, Fiber, Layer, TestClock } from "effect"

const { InputField, InfoField, Fieldset, Choice } = ActionInputs
const { sample } = FakeZapier
const user = sample.user

const channel = InputField.make({
  id: "channel",
  title: "Channel",
  required: true,
  format: "SELECT",
  valueType: "STRING",
  choices: [
    Choice.make({ id: "C1", value: "#general", label: "general" }),
    Choice.make({ id: "C2", value: "#random", label: "random" })
  ]
})
const text = InputField.make({ id: "text", title: "Text", required: true, valueType: "STRING" })
const count = InputField.make({ id: "count", title: "Count", valueType: "INTEGER" })
const ratio = InputField.make({ id: "ratio", title: "Ratio", valueType: "NUMBER", default: "0.5" })
const notify = InputField.make({ id: "notify", title: "Notify", valueType: "BOOLEAN", default: "true" })
const tags = InputField.make({ id: "tags", title: "Tags", valueType: "STRING", list: true, required: true })
const meta = InputField.make({ id: "meta", title: "Meta", valueType: "OBJECT" })
const computed = InputField.make({ id: "computed", title: "Computed", required: true, format: "READONLY" })
const secret = InputField.make({ id: "secret", title: "Secret", format: "PASSWORD", valueType: "STRING" })
const fields: ReadonlyArray<ActionInputs.Field> = [
  channel,
  text,
  InfoField.make({ id: "help", description: "Posts as the connected user." }),
  Fieldset.make({ id: "advanced", title: "Advanced", fields: [count, ratio, notify, tags, meta, computed, secret] })
]

const good = { channel: "#general", text: "Hi", count: 3, ratio: 1.5, notify: false, tags: ["a"], meta: { k: 1 } }

const ajv = new Ajv2020({ allErrors: true })

describe("ActionInputs.validate", () => {
  it.effect("accepts inputs that fit, and returns them", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* ActionInputs.validate(fields, good), good)
      // Defaults fill required fields; READONLY fields are Zapier's; unknown ids are ignored.
      const withDefault = InputField.make({ id: "mode", title: "Mode", required: true, default: "fast" })
      yield* ActionInputs.validate([withDefault, computed], { other: 1 })
    })
  )

  it.effect("reports every kind of problem, by field, in one InvalidInputs", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        ActionInputs.validate(
          fields,
          { channel: "#nope", count: "3", ratio: Number.NaN, notify: "yes", tags: "a", meta: [1] },
          { action: Domain.ActionKey.make("send_channel_message") }
        )
      )
      assert.strictEqual(error._tag, "InvalidInputs")
      assert.deepStrictEqual(
        error.problems.map((p) => [p.field, p.kind]),
        [
          ["channel", "not_a_choice"],
          ["text", "missing"],
          ["count", "wrong_type"],
          ["ratio", "wrong_type"],
          ["notify", "wrong_type"],
          ["tags", "not_a_list"],
          ["meta", "wrong_type"]
        ]
      )
      assert.deepStrictEqual(error.problems[0]!.allowed, ["#general", "#random"])
      assert.strictEqual(error.problems[2]!.expected, "an integer")
      assert.strictEqual(error.problems[2]!.actual, "a string of 1 characters", "the kind of value, never the value")
      for (const field of ["channel", "text", "count", "ratio", "notify", "tags", "meta"]) {
        assert.include(error.message, `${field}: `)
      }
      assert.include(error.message, "send_channel_message")
      assert.include(error.message, "text: is required")
      assert.include(error.message, "count: expected an integer, got a string of 1 characters")
      assert.include(error.message, 'channel: the value is not one of the choices; choose one of "#general", "#random"')
      assert.isTrue(Errors.isZapierError(error))
    })
  )

  it.effect("checks every item of a list, and counts empty values as missing", () =>
    Effect.gen(function* () {
      const listOfChoices = InputField.make({ ...channel, id: "channels", list: true, required: false })
      const error = yield* Effect.flip(
        ActionInputs.validate([text, tags, listOfChoices], { text: "", tags: [], channels: ["#general", 7, "#x"] })
      )
      assert.deepStrictEqual(
        error.problems.map((p) => [p.field, p.kind, p.index]),
        [
          ["text", "missing", undefined],
          ["tags", "missing", undefined],
          ["channels", "wrong_type", 1],
          ["channels", "not_a_choice", 2]
        ]
      )
      assert.include(error.message, "channels: expected a string (item 1), got an integer")
      // null is a value, not an absence: it has the wrong type.
      const nulls = ActionInputs.problems([count], { count: null })
      assert.deepStrictEqual(
        nulls.map((p) => [p.kind, p.actual]),
        [["wrong_type", "null"]]
      )
    })
  )
})

describe("ActionInputs.toJsonSchema", () => {
  const schema = ActionInputs.toJsonSchema(fields, { title: "Send Channel Message" })

  it("is a draft 2020-12 schema that Ajv compiles in strict mode", () => {
    assert.strictEqual(schema.$schema, "https://json-schema.org/draft/2020-12/schema")
    assert.isTrue(ajv.validateSchema(schema) as boolean, ajv.errorsText(ajv.errors))
    const validate = ajv.compile(schema)
    assert.isTrue(validate(good), ajv.errorsText(validate.errors))
    assert.deepStrictEqual(schema.required, ["channel", "text", "tags"])
    const properties = schema.properties as Record<string, Record<string, unknown>>
    assert.deepStrictEqual(Object.keys(properties), [
      "channel",
      "text",
      "count",
      "ratio",
      "notify",
      "tags",
      "meta",
      "computed",
      "secret"
    ])
    assert.deepStrictEqual(properties.channel!.oneOf, [
      { const: "#general", title: "general" },
      { const: "#random", title: "random" }
    ])
    assert.deepStrictEqual(properties.tags, {
      type: "array",
      items: { type: "string" },
      minItems: 1,
      title: "Tags"
    })
    assert.strictEqual(properties.ratio!.default, 0.5)
    assert.strictEqual(properties.notify!.default, true)
    assert.strictEqual(properties.secret!.writeOnly, true)
    assert.strictEqual(properties.computed!.readOnly, true)
  })

  it("accepts exactly what validate accepts", () => {
    const validateSchema = ajv.compile(schema)
    const cases: ReadonlyArray<Record<string, unknown>> = [
      good,
      { ...good, channel: "#nope" },
      { ...good, text: "" },
      { ...good, text: undefined },
      { ...good, count: 2.5 },
      { ...good, count: "2" },
      { ...good, ratio: "1" },
      { ...good, notify: 1 },
      { ...good, tags: [] },
      { ...good, tags: "a" },
      { ...good, tags: ["a", 2] },
      { ...good, meta: [] },
      { ...good, meta: null },
      { channel: "#random", text: "x", tags: ["t"] }
    ]
    for (const inputs of cases) {
      const defined = JSON.parse(JSON.stringify(inputs)) as Record<string, unknown>
      const byValidate = ActionInputs.problems(fields, defined).length === 0
      const bySchema = validateSchema(defined) as boolean
      assert.strictEqual(bySchema, byValidate, `${JSON.stringify(defined)}: ${ajv.errorsText(validateSchema.errors)}`)
    }
  })
})

describe("ActionInputs.change (the dynamic-field loop)", () => {
  /** A scripted Zapier: `kind` appears once `mode` is set; `detail` once `kind` is set. Counts the fetches. */
  const scripted =
    (fetches: Array<ActionInputs.Inputs>): ActionInputs.LoadFields<never> =>
    (inputs) =>
      Effect.sync(() => {
        fetches.push(inputs)
        const mode = InputField.make({ id: "mode", title: "Mode", invalidates: true })
        const kind = InputField.make({ id: "kind", title: "Kind", invalidates: true, dependsOn: ["mode"] })
        const detail = InputField.make({ id: "detail", title: "Detail", dependsOn: ["kind"] })
        const note = InputField.make({ id: "note", title: "Note" })
        return [mode, note, ...(inputs.mode ? [kind] : []), ...(inputs.kind ? [detail] : [])]
      })
  const ids = (form: ActionInputs.Form) => ActionInputs.inputFieldsOf(form.fields).map((f) => f.id)

  it.effect("fetches again when an invalidating field changes, and clears what depended on it", () =>
    Effect.gen(function* () {
      const fetches: Array<ActionInputs.Inputs> = []
      const load = scripted(fetches)
      let form = yield* ActionInputs.open(load)
      assert.deepStrictEqual(ids(form), ["mode", "note"])
      form = yield* ActionInputs.change(load, form, { note: "free text" })
      assert.strictEqual(fetches.length, 1, "a field that invalidates nothing costs no request")
      form = yield* ActionInputs.change(load, form, { mode: "a" })
      assert.deepStrictEqual(ids(form), ["mode", "note", "kind"])
      form = yield* ActionInputs.change(load, form, { kind: "k" })
      assert.deepStrictEqual(ids(form), ["mode", "note", "kind", "detail"])
      form = yield* ActionInputs.change(load, form, { detail: "d" })
      assert.strictEqual(fetches.length, 3)
      form = yield* ActionInputs.change(load, form, { mode: "b" })
      assert.deepStrictEqual(form.cleared, ["kind", "detail"])
      assert.deepStrictEqual(form.inputs, { note: "free text", mode: "b" })
      assert.deepStrictEqual(fetches.at(-1), { note: "free text", mode: "b" })
      assert.deepStrictEqual(ids(form), ["mode", "note", "kind"])
      // Setting a value again is no change.
      const before = fetches.length
      yield* ActionInputs.change(load, form, { mode: "b" })
      assert.strictEqual(fetches.length, before)
    })
  )

  it.effect("re-fetches once more when a field that appeared already has a value", () =>
    Effect.gen(function* () {
      const fetches: Array<ActionInputs.Inputs> = []
      const load = scripted(fetches)
      const form = yield* ActionInputs.change(load, yield* ActionInputs.open(load), { mode: "a", kind: "k" })
      assert.deepStrictEqual(ids(form), ["mode", "note", "kind", "detail"])
      assert.strictEqual(fetches.length, 3, "open, then the change, then once more for `kind`")
    })
  )
})

describe("ActionInputs.withChoices", () => {
  const pages =
    (total: number, size: number, calls: Array<number>): ActionInputs.LoadChoices<never> =>
    (_field, page) =>
      Effect.sync(() => {
        calls.push(page)
        const start = (page - 1) * size
        const choices = Array.from({ length: Math.max(0, Math.min(size, total - start)) }, (_, i) =>
          Choice.make({ id: String(start + i), value: `v${start + i}` })
        )
        return ActionInputs.ChoicesPage.make({
          choices,
          page,
          ...(start + size < total ? { nextPage: page + 1 } : {})
        })
      })

  it.effect("attaches every page of choices, and none when they do not all fit", () =>
    Effect.gen(function* () {
      const calls: Array<number> = []
      const select = InputField.make({ id: "pick", title: "Pick", format: "SELECT", valueType: "STRING" })
      const loaded = yield* ActionInputs.withChoices([select, text], pages(23, 10, calls))
      const pick = ActionInputs.inputFieldsOf(loaded)[0]!
      assert.strictEqual(pick.choices?.length, 23)
      assert.deepStrictEqual(calls, [1, 2, 3])
      const partial = yield* ActionInputs.withChoices([select], pages(23, 10, []), { maxPages: 2 })
      assert.isUndefined(ActionInputs.inputFieldsOf(partial)[0]!.choices)
      // Without the complete list a value is not refused.
      yield* ActionInputs.validate(partial, { pick: "v99" })
      const error = yield* Effect.flip(ActionInputs.validate(loaded, { pick: "v99" }))
      assert.strictEqual(error.problems[0]!.kind, "not_a_choice")
    })
  )
})

describe("EmbeddedActions validates inputs first (FakeZapier.layer)", () => {
  const TestLayer = EmbeddedActions.layer.pipe(
    Layer.provideMerge(Layer.merge(FakeZapier.layer(FakeZapier.sampleSeed), ConnectionStore.layerMemory))
  )
  const run = (inputs: ActionInputs.Inputs, extra: Partial<EmbeddedActions.RunRequest> = {}) =>
    Effect.gen(function* () {
      const actions = yield* EmbeddedActions.EmbeddedActions
      const zapier = yield* FakeZapier.FakeZapier
      const connection = yield* zapier.addConnection(user, sample.slack)
      const fiber = yield* Effect.fork(
        Effect.either(
          actions.run({
            user,
            app: sample.slack,
            action: sample.sendChannelMessage,
            inputs,
            connection: connection.id,
            ...extra
          })
        )
      )
      yield* TestClock.adjust("1 minute")
      return { outcome: yield* Fiber.join(fiber), ledger: yield* zapier.ledger }
    }).pipe(Effect.provide(TestLayer))

  it.effect("refuses bad inputs of a WRITE action before any run is created", () =>
    Effect.gen(function* () {
      const { ledger, outcome } = yield* run(
        { channel: "#nope", send_as_bot: true, mentions: "U1" },
        { validateChoices: true }
      )
      assert.isTrue(Either.isLeft(outcome))
      const error = Either.getLeft(outcome).pipe((o) => (o._tag === "Some" ? o.value : undefined))
      if (error?._tag !== "InvalidInputs") return assert.fail(`expected InvalidInputs, got ${error?._tag}`)
      assert.deepStrictEqual(
        error.problems.map((p) => [p.field, p.kind]),
        [
          ["channel", "not_a_choice"],
          ["text", "missing"],
          ["bot_name", "missing"],
          ["mentions", "not_a_list"]
        ]
      )
      assert.strictEqual(ledger.runs.length, 0)
      const counts = FakeZapier.requestsByEndpoint(ledger)
      assert.strictEqual(counts[FakeZapier.Endpoint.inputs], 1)
      assert.strictEqual(counts[FakeZapier.Endpoint.choices], 3, "the three pages of channels")
    })
  )

  it.effect("by default checks fields with one request and leaves choices to Zapier", () =>
    Effect.gen(function* () {
      const { ledger, outcome } = yield* run({ channel: "#nope", send_as_bot: true, mentions: "U1" })
      const error = Either.getLeft(outcome).pipe((o) => (o._tag === "Some" ? o.value : undefined))
      if (error?._tag !== "InvalidInputs") return assert.fail(`expected InvalidInputs, got ${error?._tag}`)
      assert.deepStrictEqual(
        error.problems.map((p) => [p.field, p.kind]),
        [
          ["text", "missing"],
          ["bot_name", "missing"],
          ["mentions", "not_a_list"]
        ]
      )
      const counts = FakeZapier.requestsByEndpoint(ledger)
      assert.strictEqual(counts[FakeZapier.Endpoint.inputs], 1)
      assert.isUndefined(counts[FakeZapier.Endpoint.choices])
      assert.strictEqual(ledger.runs.length, 0)
    })
  )

  it.effect("runs good inputs, and skips the check when told to", () =>
    Effect.gen(function* () {
      const ok = yield* run({ channel: "#zapier-alerts", text: "Hi", mentions: ["U1"] })
      assert.isTrue(Either.isRight(ok.outcome))
      assert.strictEqual(ok.ledger.runs.length, 1)
      const unchecked = yield* run({ channel: "#nope" }, { validateInputs: false })
      assert.isTrue(Either.isRight(unchecked.outcome))
      assert.strictEqual(FakeZapier.requestsByEndpoint(unchecked.ledger)[FakeZapier.Endpoint.inputs], undefined)
    })
  )

  it.effect("does not check SEARCH actions unless asked", () =>
    Effect.gen(function* () {
      const search = { action: sample.findUserByEmail, actionType: "SEARCH" as const }
      const unchecked = yield* run({}, search)
      assert.isTrue(Either.isRight(unchecked.outcome))
      const checked = yield* run({}, { ...search, validateInputs: true })
      const error = Either.getLeft(checked.outcome).pipe((o) => (o._tag === "Some" ? o.value : undefined))
      assert.strictEqual(error?._tag, "InvalidInputs")
    })
  )
})

describe("README: before running", () => {
  it.effect("the README's discovery example runs against FakeZapier.layer", () =>
    Effect.gen(function* () {
      const zapier = yield* FakeZapier.FakeZapier
      const connection = yield* zapier.addConnection(user, sample.slack)
      const key = sample.sendChannelMessage
      // The README's example, verbatim:
      const form = Effect.gen(function* () {
        const slack = (yield* (yield* Apps.Apps).search(user, "slack")).apps[0]! // App { id, title, actionTypes, … }
        const catalog = yield* ActionCatalog.ActionCatalog
        const action = yield* catalog.resolve(user, slack.id, key, "WRITE")
        const load = ActionInputs.loader(catalog, user, action, connection.id)
        let state = yield* ActionInputs.open(load) // fields for no inputs yet
        state = yield* ActionInputs.change(load, state, { send_as_bot: true }) // re-fetched: bot_name appears
        const fields = yield* ActionInputs.withChoices(state.fields, (field, page) =>
          catalog.choices(user, action.id, field, { connection: connection.id, inputs: state.inputs, page })
        )
        return ActionInputs.toJsonSchema(fields) // draft 2020-12, for a form or an LLM
      })
      const schema = yield* form
      assert.deepStrictEqual(schema.required, ["channel", "text", "bot_name"])
      assert.isTrue(ajv.compile(schema)({ channel: "#general", text: "Hi", bot_name: "Zap" }) as boolean)
    }).pipe(Effect.provide(FakeZapier.layer(FakeZapier.sampleSeed)))
  )
})

/**
 * What an action takes and gives: its input fields (static ones, dropdowns whose choices come from the user's
 * account, fields that appear when another one changes), info fields and fieldsets, and its output fields; and
 * what a workflow builder does with them before running anything:
 *
 * - {@link validate} the inputs (required fields, value types, lists, choices), failing with `InvalidInputs`
 *   that lists every problem by field;
 * - {@link toJsonSchema}: a JSON Schema (draft 2020-12) of the inputs, for the partner's form renderer or an LLM;
 * - {@link open} / {@link change}: the dynamic-field loop (when a field marked `invalidates` changes, its
 *   dependent values are cleared and the fields are fetched again with the new inputs);
 * - {@link withChoices}: load every page of the choices of `SELECT` fields.
 *
 * Inputs are one flat object keyed by field id; fieldsets only group fields for display.
 *
 * @example
 * ```ts
 * import { ActionCatalog, ActionInputs, Domain } from "@effect-zapier/core"
 * import { Effect } from "effect"
 *
 * const user = Domain.EndUser.make({ userId: "u-42", tenantId: "acme" })
 * const app = Domain.AppId.make("slack")
 * const connection = Domain.ConnectionId.make("10002")
 * const key = Domain.ActionKey.make("send_channel_message")
 *
 * const program = Effect.gen(function* () {
 *   const catalog = yield* ActionCatalog.ActionCatalog
 *   const action = yield* catalog.resolve(user, app, key, "WRITE")
 *   const fields = yield* catalog.inputFields(user, action.id, { connection, inputs: {} })
 *   const schema = ActionInputs.toJsonSchema(fields) // hand it to a form renderer or an LLM
 *   yield* ActionInputs.validate(fields, { channel: "#general", text: "Hi" })
 * })
 * ```
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as ActionCatalog from "./ActionCatalog.js"
import type { ChoicesPage, Field, Inputs, ValueType } from "./ActionFields.js"
import { type Choice, Fieldset, InputField, inputFieldsOf } from "./ActionFields.js"
import type { Action, ActionKey, ConnectionId, EndUser } from "./Domain.js"
import { InputProblem, InvalidInputs } from "./Errors.js"

export {
  /**
   * Re-exported from `ActionFields`.
   * @since 0.1.0
   */
  Choice,
  /**
   * Re-exported from `ActionFields`.
   * @since 0.1.0
   */
  ChoicesPage,
  /**
   * Re-exported from `ActionFields`.
   * @since 0.1.0
   */
  Field,
  /**
   * Re-exported from `ActionFields`.
   * @since 0.1.0
   */
  Fieldset,
  /**
   * Re-exported from `ActionFields`.
   * @since 0.1.0
   */
  InfoField,
  /**
   * Re-exported from `ActionFields`.
   * @since 0.1.0
   */
  InputField,
  /**
   * Re-exported from `ActionFields`.
   * @since 0.1.0
   */
  InputFormat,
  /**
   * Re-exported from `ActionFields`.
   * @since 0.1.0
   */
  type Inputs,
  /**
   * Re-exported from `ActionFields`.
   * @since 0.1.0
   */
  inputFieldsOf,
  /**
   * Re-exported from `ActionFields`.
   * @since 0.1.0
   */
  OutputField,
  /**
   * Re-exported from `ActionFields`.
   * @since 0.1.0
   */
  ValueType
} from "./ActionFields.js"

// ---------------------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------------------

const expectedOf: Record<ValueType, string> = {
  STRING: "a string",
  NUMBER: "a number",
  INTEGER: "an integer",
  BOOLEAN: "a boolean",
  OBJECT: "an object"
}

const isPlainObject = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const fitsType = (value: unknown, type: ValueType): boolean => {
  switch (type) {
    case "STRING":
      return typeof value === "string"
    case "NUMBER":
      return typeof value === "number" && Number.isFinite(value)
    case "INTEGER":
      return typeof value === "number" && Number.isInteger(value)
    case "BOOLEAN":
      return typeof value === "boolean"
    case "OBJECT":
      return isPlainObject(value)
  }
}

/**
 * What kind of value it is, never the value itself: inputs may hold personal data, and messages end up in logs and
 * span events.
 */
const describe = (value: unknown): string => {
  if (value === null) return "null"
  if (Array.isArray(value)) return `a list of ${value.length}`
  switch (typeof value) {
    case "string":
      return value.length === 0 ? "an empty string" : `a string of ${value.length} characters`
    case "number":
      return Number.isInteger(value) ? "an integer" : "a number"
    case "boolean":
      return "a boolean"
    case "bigint":
      return "a bigint"
    case "object":
      return "an object"
    default:
      return typeof value
  }
}

const isEmpty = (value: unknown): boolean =>
  value === undefined || value === "" || (Array.isArray(value) && value.length === 0)

const choiceKey = (value: unknown): string | undefined =>
  typeof value === "string" || typeof value === "number" || typeof value === "boolean" ? String(value) : undefined

const problemsOfField = (field: InputField, value: unknown): ReadonlyArray<InputProblem> => {
  const base = { field: field.id, ...(field.title.length > 0 ? { title: field.title } : {}) }
  if (field.format === "READONLY") return []
  if (field.needsValue && isEmpty(value)) return [InputProblem.make({ ...base, kind: "missing" })]
  if (value === undefined) return []
  const type = field.valueType
  const allowed = field.choices !== undefined && field.choices.length > 0 ? field.choices : undefined
  const allowedValues = allowed ? new Set(allowed.map((c) => c.value)) : undefined
  const checkOne = (item: unknown, index: number | undefined): ReadonlyArray<InputProblem> => {
    const at = index !== undefined ? { index } : {}
    if (type !== undefined && !fitsType(item, type)) {
      return [
        InputProblem.make({ ...base, ...at, kind: "wrong_type", expected: expectedOf[type], actual: describe(item) })
      ]
    }
    if (allowedValues !== undefined) {
      const key = choiceKey(item)
      if (key === undefined || !allowedValues.has(key)) {
        return [
          InputProblem.make({
            ...base,
            ...at,
            kind: "not_a_choice",
            actual: describe(item),
            allowed: allowed!.slice(0, 5).map((c) => c.value)
          })
        ]
      }
    }
    return []
  }
  if (field.list) {
    if (!Array.isArray(value)) {
      return [
        InputProblem.make({
          ...base,
          kind: "not_a_list",
          expected: type !== undefined ? expectedOf[type].replace(/^an? /, "") + "s" : "values",
          actual: describe(value)
        })
      ]
    }
    return value.flatMap((item, i) => checkOne(item, i))
  }
  return checkOne(value, undefined)
}

/**
 * Every problem of `inputs` against `fields`, in field order (empty when the inputs are fine). Values are checked
 * strictly, as the JSON Schema of {@link toJsonSchema} describes them: a `NUMBER` field takes a number, not a
 * numeric string. Inputs for ids that are not among the fields are ignored.
 * @since 0.1.0
 * @category validation
 */
export const problems = (fields: ReadonlyArray<Field>, inputs: Inputs): ReadonlyArray<InputProblem> =>
  inputFieldsOf(fields).flatMap((field) =>
    problemsOfField(field, Object.hasOwn(inputs, field.id) ? inputs[field.id] : undefined)
  )

/**
 * Checks `inputs` against `fields` before a run is created: required fields (absent, `""` and `[]` count as
 * missing unless the field has a default), value types, lists, and the choices of `SELECT` fields whose choices
 * were loaded. Fails with `InvalidInputs` listing every problem by field; succeeds with the inputs.
 *
 * @example
 * ```ts
 * import { ActionInputs } from "@effect-zapier/core"
 * import { Effect } from "effect"
 *
 * const fields = [
 *   ActionInputs.InputField.make({ id: "channel", title: "Channel", required: true, format: "SELECT" }),
 *   ActionInputs.InputField.make({ id: "text", title: "Message Text", required: true, valueType: "STRING" })
 * ]
 *
 * const result = Effect.runSync(ActionInputs.validate(fields, { text: 42 }).pipe(Effect.either))
 * // Left(InvalidInputs): "The inputs are invalid (2 problems): channel: is required; text: expected a string, got an
 * // integer. Fix them before running the action."
 * ```
 * @since 0.1.0
 * @category validation
 */
export const validate = Effect.fn("ActionInputs.validate")(function* (
  fields: ReadonlyArray<Field>,
  inputs: Inputs,
  options?: { readonly action?: ActionKey | undefined }
) {
  const found = problems(fields, inputs)
  if (found.length > 0) {
    return yield* new InvalidInputs({
      problems: found,
      ...(options?.action !== undefined ? { action: options.action } : {})
    })
  }
  return inputs
})

// ---------------------------------------------------------------------------------------------------------------
// JSON Schema
// ---------------------------------------------------------------------------------------------------------------

/**
 * A JSON Schema document (plain JSON).
 * @since 0.1.0
 * @category json schema
 */
export type JsonSchema = { readonly [key: string]: unknown }

const jsonTypeOf: Record<ValueType, string> = {
  STRING: "string",
  NUMBER: "number",
  INTEGER: "integer",
  BOOLEAN: "boolean",
  OBJECT: "object"
}

/** A string from Zapier (a default, a choice value) as a value of the field's type, when it is one. */
const typedValue = (raw: string, type: ValueType | undefined): { readonly value: unknown } | undefined => {
  switch (type) {
    case undefined:
    case "STRING":
      return { value: raw }
    case "NUMBER":
    case "INTEGER": {
      const n = raw.trim() === "" ? Number.NaN : Number(raw)
      return fitsType(n, type) ? { value: n } : undefined
    }
    case "BOOLEAN":
      return raw === "true" ? { value: true } : raw === "false" ? { value: false } : undefined
    case "OBJECT": {
      try {
        const parsed: unknown = JSON.parse(raw)
        return isPlainObject(parsed) ? { value: parsed } : undefined
      } catch {
        return undefined
      }
    }
  }
}

const propertyOf = (field: InputField): JsonSchema => {
  const needed = field.needsValue
  const one: Record<string, unknown> = field.valueType !== undefined ? { type: jsonTypeOf[field.valueType] } : {}
  if (field.choices !== undefined && field.choices.length > 0) {
    const seen = new Set<string>()
    const options: Array<JsonSchema> = []
    for (const choice of field.choices) {
      const typed = typedValue(choice.value, field.valueType)
      if (typed === undefined || seen.has(choice.value)) continue
      seen.add(choice.value)
      options.push({ const: typed.value, title: choice.label ?? choice.value })
    }
    one.oneOf = options
  }
  if (!field.list && needed && field.valueType === "STRING") one.minLength = 1
  const schema: Record<string, unknown> = field.list
    ? { type: "array", items: one, ...(needed ? { minItems: 1 } : {}) }
    : one
  if (field.title.length > 0) schema.title = field.title
  const description = [field.description, field.placeholder ? `Example: ${field.placeholder}` : undefined]
    .filter((s): s is string => s !== undefined && s.length > 0)
    .join("\n\n")
  if (description.length > 0) schema.description = description
  if (field.default !== undefined) {
    const typed = typedValue(field.default, field.valueType)
    if (typed !== undefined) schema.default = field.list ? [typed.value] : typed.value
  }
  if (field.format === "PASSWORD") schema.writeOnly = true
  if (field.format === "READONLY") schema.readOnly = true
  return schema
}

/**
 * The JSON Schema (draft 2020-12) of the inputs `fields` describe: one property per input field (fieldsets
 * flattened, info fields left out) with its type, `title`, `description`, `default`, the choices that were loaded
 * as `oneOf` of `const` + `title`, lists as arrays, and `required` for the fields a run needs. The schema accepts
 * exactly what {@link validate} accepts.
 *
 * @example
 * ```ts
 * import { ActionInputs } from "@effect-zapier/core"
 *
 * const fields = [
 *   ActionInputs.InputField.make({ id: "channel", title: "Channel", required: true, format: "SELECT" }),
 *   ActionInputs.InputField.make({ id: "text", title: "Message Text", required: true, valueType: "STRING" })
 * ]
 *
 * const schema = ActionInputs.toJsonSchema(fields, { title: "Send Channel Message" })
 * // { $schema: "https://json-schema.org/draft/2020-12/schema", type: "object",
 * //   properties: { channel: { type: "string", oneOf: [{ const: "#general", title: "general" }, …] }, … },
 * //   required: ["channel", "text"] }
 * ```
 * @since 0.1.0
 * @category json schema
 */
export const toJsonSchema = (
  fields: ReadonlyArray<Field>,
  options?: { readonly title?: string | undefined; readonly description?: string | undefined }
): JsonSchema => {
  const inputs = inputFieldsOf(fields)
  const properties: Record<string, JsonSchema> = {}
  for (const field of inputs) properties[field.id] = propertyOf(field)
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    type: "object",
    ...(options?.title !== undefined ? { title: options.title } : {}),
    ...(options?.description !== undefined ? { description: options.description } : {}),
    properties,
    required: inputs.filter((f) => f.needsValue).map((f) => f.id)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Choices
// ---------------------------------------------------------------------------------------------------------------

/**
 * Loads one page of a field's choices (pages from 1), e.g. `(field, page) => catalog.choices(user, action.id,
 * field, { connection, inputs, page })`.
 * @since 0.1.0
 * @category choices
 */
export type LoadChoices<E, R = never> = (field: string, page: number) => Effect.Effect<ChoicesPage, E, R>

/**
 * Every choice of one field, following `nextPage` up to `maxPages` (default 10). `complete` is false when the
 * last page read still had a next one.
 * @since 0.1.0
 * @category choices
 */
export const allChoices = <E, R>(
  load: LoadChoices<E, R>,
  field: string,
  options?: { readonly maxPages?: number | undefined }
): Effect.Effect<{ readonly choices: ReadonlyArray<Choice>; readonly complete: boolean }, E, R> =>
  Effect.gen(function* () {
    const maxPages = Math.max(1, options?.maxPages ?? 10)
    const choices: Array<Choice> = []
    let page: number | undefined = 1
    for (let read = 0; page !== undefined && read < maxPages; read++) {
      const current: ChoicesPage = yield* load(field, page)
      choices.push(...current.choices)
      page = current.nextPage !== undefined && current.nextPage > page ? current.nextPage : undefined
    }
    return { choices, complete: page === undefined }
  })

/**
 * `fields` with the complete choices of their `SELECT` fields attached (every page, up to `maxPages` each; a
 * field whose choices do not fit is left without, so {@link validate} does not refuse a value it could not see).
 * `only` picks the fields to load (default: every `SELECT` field); fields are loaded one after the other.
 *
 * @example
 * ```ts
 * import { ActionCatalog, ActionInputs, Domain } from "@effect-zapier/core"
 * import { Effect } from "effect"
 *
 * const user = Domain.EndUser.make({ userId: "u-42", tenantId: "acme" })
 * const connection = Domain.ConnectionId.make("10002")
 * const inputs = { text: "Hi" }
 *
 * const program = Effect.gen(function* () {
 *   const catalog = yield* ActionCatalog.ActionCatalog
 *   const action = yield* catalog.resolve(user, Domain.AppId.make("slack"), Domain.ActionKey.make("send_channel_message"), "WRITE")
 *   const fields = yield* catalog.inputFields(user, action.id, { connection, inputs })
 *   const loaded = yield* ActionInputs.withChoices(fields, (field, page) =>
 *     catalog.choices(user, action.id, field, { connection, inputs, page })
 *   )
 * })
 * ```
 * @since 0.1.0
 * @category choices
 */
export const withChoices = <E, R>(
  fields: ReadonlyArray<Field>,
  load: LoadChoices<E, R>,
  options?: {
    readonly only?: ((field: InputField) => boolean) | undefined
    readonly maxPages?: number | undefined
  }
): Effect.Effect<ReadonlyArray<Field>, E, R> =>
  Effect.gen(function* () {
    const wanted = (f: InputField) => f.isSelect && (options?.only === undefined || options.only(f))
    const loaded = new Map<string, ReadonlyArray<Choice>>()
    for (const field of inputFieldsOf(fields)) {
      if (!wanted(field) || loaded.has(field.id)) continue
      const all = yield* allChoices(load, field.id, { maxPages: options?.maxPages })
      if (all.complete) loaded.set(field.id, all.choices)
    }
    const attach = (f: InputField): InputField => {
      const choices = loaded.get(f.id)
      return choices === undefined ? f : InputField.make({ ...f, choices })
    }
    return fields.map((f): Field => {
      if (f._tag === "InputField") return attach(f)
      if (f._tag === "Fieldset") {
        return Fieldset.make({ ...f, fields: f.fields.map((x) => (x._tag === "InputField" ? attach(x) : x)) })
      }
      return f
    })
  })

// ---------------------------------------------------------------------------------------------------------------
// The dynamic-field loop
// ---------------------------------------------------------------------------------------------------------------

/**
 * Loads the input fields for a set of inputs, e.g. `(inputs) => catalog.inputFields(user, action.id,
 * { connection, inputs })` (or {@link loader}).
 * @since 0.1.0
 * @category dynamic fields
 */
export type LoadFields<E, R = never> = (inputs: Inputs) => Effect.Effect<ReadonlyArray<Field>, E, R>

/**
 * A form being filled: the fields for the current inputs, the inputs, and the ids whose values the last
 * {@link change} cleared because a field they depend on changed.
 * @since 0.1.0
 * @category dynamic fields
 */
export interface Form {
  readonly fields: ReadonlyArray<Field>
  readonly inputs: Inputs
  readonly cleared: ReadonlyArray<string>
}

/**
 * The `LoadFields` of one action for one user and connection.
 * @since 0.1.0
 * @category dynamic fields
 */
export const loader =
  (
    catalog: ActionCatalog.Service,
    user: EndUser,
    action: Action,
    connection: ConnectionId | null
  ): LoadFields<ActionCatalog.FieldsError> =>
  (inputs) =>
    catalog.inputFields(user, action.id, { connection, inputs })

/**
 * Opens a form: the fields for `inputs` (default none).
 * @since 0.1.0
 * @category dynamic fields
 */
export const open = <E, R>(load: LoadFields<E, R>, inputs: Inputs = {}): Effect.Effect<Form, E, R> =>
  Effect.map(load(inputs), (fields) => ({ fields, inputs, cleared: [] }))

const sameValue = (a: unknown, b: unknown): boolean =>
  a === b || (typeof a === "object" && typeof b === "object" && JSON.stringify(a) === JSON.stringify(b))

/**
 * One step of the dynamic-field loop: applies `changes` (a value of `undefined` removes an input), clears the
 * values of fields that depend (`dependsOn`, transitively) on a changed field, and, when a changed field
 * `invalidates` the fields or others depend on it, fetches the fields again with the new inputs. When fields
 * appear that invalidate and already have a value (set in the same change), they are fetched once more, up to
 * `maxRounds` fetches (default 5). A change that touches no such field costs no request.
 *
 * @example
 * ```ts
 * import { ActionCatalog, ActionInputs, Domain } from "@effect-zapier/core"
 * import { Effect } from "effect"
 *
 * const user = Domain.EndUser.make({ userId: "u-42", tenantId: "acme" })
 * const app = Domain.AppId.make("google-sheets")
 * const connection = Domain.ConnectionId.make("10002")
 *
 * const program = Effect.gen(function* () {
 *   const catalog = yield* ActionCatalog.ActionCatalog
 *   const action = yield* catalog.resolve(user, app, Domain.ActionKey.make("add_row"), "WRITE")
 *   const load = ActionInputs.loader(catalog, user, action, connection)
 *   let form = yield* ActionInputs.open(load)                          // [spreadsheet]
 *   form = yield* ActionInputs.change(load, form, { spreadsheet: "s1" }) // [spreadsheet, worksheet]
 *   form = yield* ActionInputs.change(load, form, { worksheet: "w1" })   // + one field per column
 * })
 * ```
 * @since 0.1.0
 * @category dynamic fields
 */
export const change = <E, R>(
  load: LoadFields<E, R>,
  form: Form,
  changes: Inputs,
  options?: { readonly maxRounds?: number | undefined }
): Effect.Effect<Form, E, R> =>
  Effect.gen(function* () {
    const known = inputFieldsOf(form.fields)
    const inputs: Record<string, unknown> = { ...form.inputs }
    const changed: Array<string> = []
    for (const [id, value] of Object.entries(changes)) {
      if (sameValue(inputs[id], value)) continue
      changed.push(id)
      if (value === undefined) delete inputs[id]
      else inputs[id] = value
    }
    const cleared: Array<string> = []
    const frontier = [...changed]
    while (frontier.length > 0) {
      const id = frontier.pop()!
      for (const field of known) {
        if (!field.dependsOn.includes(id) || cleared.includes(field.id) || Object.hasOwn(changes, field.id)) continue
        cleared.push(field.id)
        if (Object.hasOwn(inputs, field.id)) delete inputs[field.id]
        frontier.push(field.id)
      }
    }
    const refetch = changed.some(
      (id) => known.some((f) => f.id === id && f.invalidates) || known.some((f) => f.dependsOn.includes(id))
    )
    if (!refetch) return { fields: form.fields, inputs, cleared }
    const maxRounds = Math.max(1, options?.maxRounds ?? 5)
    let previous = new Set(known.map((f) => f.id))
    let fields = yield* load(inputs)
    for (let round = 1; round < maxRounds; round++) {
      const current = inputFieldsOf(fields)
      const appeared = current.filter((f) => !previous.has(f.id) && f.invalidates && inputs[f.id] !== undefined)
      if (appeared.length === 0) break
      previous = new Set(current.map((f) => f.id))
      fields = yield* load(inputs)
    }
    return { fields, inputs, cleared }
  })

// ---------------------------------------------------------------------------------------------------------------
// Before a run
// ---------------------------------------------------------------------------------------------------------------

/**
 * What `EmbeddedActions.start` does before creating a run: fetches the action's input fields for these inputs (one
 * request) and validates required fields, value types and lists. With `choices: true` it also loads every page
 * of the choices of the `SELECT` fields that have a value (one request per page) and refuses values that are not
 * among them. That is off before a run by default: it costs requests out of Zapier's per-minute budget on every
 * run, and Zapier dropdowns often accept custom values anyway. Fails with `InvalidInputs` (or the error of a
 * request).
 * @since 0.1.0
 * @category validation
 */
export const check = Effect.fn("ActionInputs.check")(function* (
  catalog: ActionCatalog.Service,
  user: EndUser,
  action: Action,
  request: { readonly connection: ConnectionId | null; readonly inputs: Inputs },
  options?: { readonly choices?: boolean | undefined }
) {
  const fields = yield* catalog.inputFields(user, action.id, request)
  const loaded = options?.choices
    ? yield* withChoices(fields, (field, page) => catalog.choices(user, action.id, field, { ...request, page }), {
        only: (f) => request.inputs[f.id] !== undefined
      })
    : fields
  return yield* validate(loaded, request.inputs, { action: action.key })
})

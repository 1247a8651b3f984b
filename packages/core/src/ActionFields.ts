/**
 * The fields of an action as Zapier describes them: input fields (static ones, dropdowns whose choices come from
 * the user's account, fields that appear when another one changes), info fields, fieldsets, the pages of a
 * dropdown's choices, and output fields. `ActionCatalog` returns them; `ActionInputs` validates inputs against them,
 * turns them into a JSON Schema and drives the dynamic-field loop (it re-exports every name here).
 *
 * @example
 * ```ts
 * import { ActionFields } from "@effect-zapier/core"
 *
 * const channel = ActionFields.InputField.make({ id: "channel", title: "Channel", required: true, format: "SELECT" })
 * const text = ActionFields.InputField.make({ id: "text", title: "Text", required: true })
 * const inputs = ActionFields.inputFieldsOf([channel, ActionFields.Fieldset.make({ id: "more", title: "More", fields: [text] })])
 * // inputs: [channel, text]
 * ```
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * How an input field is shown (Zapier's `format`). `SELECT` fields have choices (see `ActionCatalog.choices`);
 * `READONLY` fields are computed by Zapier and never checked.
 * @since 0.1.0
 * @category fields
 */
export const InputFormat = Schema.Literal("DATETIME", "MULTILINE", "PASSWORD", "CODE", "READONLY", "FILE", "SELECT")
/**
 * @since 0.1.0
 * @category fields
 */
export type InputFormat = typeof InputFormat.Type

/**
 * The type of one value of an input field. A list field (`list: true`, Zapier's `value_type: "ARRAY"`) takes a
 * list of values of this type.
 * @since 0.1.0
 * @category fields
 */
export const ValueType = Schema.Literal("STRING", "NUMBER", "INTEGER", "BOOLEAN", "OBJECT")
/**
 * @since 0.1.0
 * @category fields
 */
export type ValueType = typeof ValueType.Type

/**
 * One choice of a `SELECT` field: `value` is what goes into the inputs, `label` what a person reads.
 * @since 0.1.0
 * @category fields
 */
export class Choice extends Schema.Class<Choice>("@effect-zapier/core/Choice")({
  id: Schema.String,
  value: Schema.String,
  label: Schema.optional(Schema.String)
}) {}

/**
 * An input field of an action.
 *
 * - `required`: the run needs a value (unless the field has a `default`, which Zapier fills in);
 * - `valueType`: the type of one value (absent when Zapier did not say or named a type this library does not
 *   know: then any value is accepted); `list`: the field takes a list of such values;
 * - `dependsOn`: the fields whose change clears this field's value; `invalidates`: a change of this field's
 *   value changes the set of fields, so they must be fetched again (see {@link change});
 * - `choices`: the complete choices of a `SELECT` field, when they were loaded ({@link withChoices}); only then
 *   does {@link validate} check values against them.
 *
 * @example
 * ```ts
 * import { ActionInputs } from "@effect-zapier/core"
 *
 * const text = ActionInputs.InputField.make({ id: "text", title: "Message Text", required: true })
 * ```
 * @since 0.1.0
 * @category fields
 */
export class InputField extends Schema.TaggedClass<InputField>("@effect-zapier/core/InputField")("InputField", {
  id: Schema.NonEmptyString,
  title: Schema.String,
  description: Schema.optional(Schema.String),
  required: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  default: Schema.optional(Schema.String),
  placeholder: Schema.optional(Schema.String),
  format: Schema.optional(InputFormat),
  valueType: Schema.optional(ValueType),
  list: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  dependsOn: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  invalidates: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  choices: Schema.optional(Schema.Array(Choice))
}) {
  /** True for a dropdown whose choices come from `ActionCatalog.choices`. */
  get isSelect(): boolean {
    return this.format === "SELECT"
  }
  /** True when a run cannot go without a value from the caller (required, no default, not read-only). */
  get needsValue(): boolean {
    return this.required && this.default === undefined && this.format !== "READONLY"
  }
}

/**
 * A piece of text shown among the fields (help, a warning); it takes no input.
 * @since 0.1.0
 * @category fields
 */
export class InfoField extends Schema.TaggedClass<InfoField>("@effect-zapier/core/InfoField")("InfoField", {
  id: Schema.String,
  description: Schema.String
}) {}

/**
 * A titled group of fields. It only groups them for display: their inputs are keyed by field id like any other.
 * @since 0.1.0
 * @category fields
 */
export class Fieldset extends Schema.TaggedClass<Fieldset>("@effect-zapier/core/Fieldset")("Fieldset", {
  id: Schema.String,
  title: Schema.String,
  fields: Schema.Array(Schema.Union(InputField, InfoField))
}) {}

/**
 * One element of an action's input fields, in Zapier's order.
 * @since 0.1.0
 * @category fields
 */
export const Field = Schema.Union(InputField, InfoField, Fieldset)
/**
 * @since 0.1.0
 * @category fields
 */
export type Field = typeof Field.Type

/**
 * One page of a `SELECT` field's choices. Pages are numbered from 1; `nextPage` is absent on the last one.
 * @since 0.1.0
 * @category fields
 */
export class ChoicesPage extends Schema.Class<ChoicesPage>("@effect-zapier/core/ChoicesPage")({
  choices: Schema.Array(Choice),
  page: Schema.Number,
  nextPage: Schema.optional(Schema.Number)
}) {}

/**
 * One field of what a run returns (`sample` is an example value, when Zapier has one).
 * @since 0.1.0
 * @category fields
 */
export class OutputField extends Schema.Class<OutputField>("@effect-zapier/core/OutputField")({
  id: Schema.String,
  title: Schema.optional(Schema.String),
  sample: Schema.optional(Schema.Unknown)
}) {}

/**
 * The inputs of a run: one value per field id.
 * @since 0.1.0
 */
export type Inputs = Readonly<Record<string, unknown>>

/**
 * The input fields among `fields`, those inside fieldsets included, in order.
 * @since 0.1.0
 * @category fields
 */
export const inputFieldsOf = (fields: ReadonlyArray<Field>): ReadonlyArray<InputField> =>
  fields.flatMap((f) =>
    f._tag === "InputField"
      ? [f]
      : f._tag === "Fieldset"
        ? f.fields.filter((x): x is InputField => x._tag === "InputField")
        : []
  )

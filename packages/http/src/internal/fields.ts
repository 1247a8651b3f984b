/**
 * The mapping of the field endpoints' answers (`Wire.InputField`, `Wire.Choice`, `Wire.OutputField`, …) onto
 * core's `ActionInputs` domain: `POST /v2/actions/{id}/inputs` (a RootFieldset: input fields, info fields, fieldsets), `…/inputs/{input}/choices`
 * (declared as an array of envelopes, served as one: both are read) and `…/outputs`.
 *
 * Tolerant of unknown fields, of a missing `format`, of formats and value types this library does not know (the
 * field is kept, without them), of numeric ids and values. An element of the field list that is none of the three
 * kinds is an error: skipping it could hide a required field.
 * @internal
 */
import * as ActionInputs from "@effect-zapier/core/ActionInputs"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Wire from "../Wire.js"
import { BadBody, decodeBody } from "./errors.js"

const decodeFields = decodeBody(Wire.FieldsEnvelope(Schema.Unknown))
const decodeChoices = decodeBody(Wire.FieldsEnvelope(Wire.Choice))
const decodeOutputs = decodeBody(Wire.FieldsEnvelope(Wire.OutputField))

const isFormat = Schema.is(ActionInputs.InputFormat)
const isValueType = Schema.is(ActionInputs.ValueType)
const decodeInput = Schema.decodeUnknownEither(Wire.InputField)
const decodeInfo = Schema.decodeUnknownEither(Wire.InfoField)
const decodeFieldset = Schema.decodeUnknownEither(Wire.Fieldset)

const text = (s: string | null | undefined): string | undefined =>
  s === null || s === undefined || s.length === 0 ? undefined : s

const toInputField = (f: Wire.InputField): ActionInputs.InputField => {
  const format = f.format?.trim().toUpperCase()
  const valueType = f.value_type?.trim().toUpperCase()
  const list = valueType === "ARRAY"
  const itemType = list && typeof f.items?.type === "string" ? f.items.type.trim().toUpperCase() : undefined
  const type = list ? (itemType ?? "STRING") : valueType
  const description = text(f.description)
  const defaultValue = text(f.default_value)
  const placeholder = text(f.placeholder)
  return ActionInputs.InputField.make({
    id: f.id,
    title: text(f.title) ?? f.id,
    ...(description !== undefined ? { description } : {}),
    required: f.is_required === true,
    ...(defaultValue !== undefined ? { default: defaultValue } : {}),
    ...(placeholder !== undefined ? { placeholder } : {}),
    ...(format !== undefined && isFormat(format) ? { format } : {}),
    ...(type !== undefined && isValueType(type) ? { valueType: type } : {}),
    list,
    dependsOn: f.depends_on ?? [],
    invalidates: f.invalidates_input_fields === true
  })
}

type Kind = "input" | "info" | "fieldset"

const kindOf = (u: unknown): Kind | undefined => {
  if (typeof u !== "object" || u === null) return undefined
  const o = u as Record<string, unknown>
  const type = typeof o.type === "string" ? o.type.toLowerCase() : ""
  if (type === "fieldset" || Array.isArray(o.fields)) return "fieldset"
  if (type === "input_field" || "value_type" in o || "is_required" in o) return "input"
  if (type.includes("info") || (typeof o.description === "string" && !("title" in o))) return "info"
  return "input"
}

const bad = (status: number, reason: string) => new BadBody({ status, reason, transient: false })

const toField = (
  status: number,
  u: unknown,
  where: string,
  nested: boolean
): Either.Either<ActionInputs.Field, BadBody> => {
  const kind = kindOf(u)
  if (kind === "input") {
    return Either.mapBoth(decodeInput(u), {
      onLeft: () => bad(status, `${where} is not an input field`),
      onRight: toInputField
    })
  }
  if (kind === "info") {
    return Either.mapBoth(decodeInfo(u), {
      onLeft: () => bad(status, `${where} is not an info field`),
      onRight: (f) => ActionInputs.InfoField.make({ id: f.id, description: f.description ?? "" })
    })
  }
  if (kind === "fieldset" && !nested) {
    return Either.flatMap(
      Either.mapLeft(decodeFieldset(u), () => bad(status, `${where} is not a fieldset`)),
      (set) =>
        Either.map(Either.all(set.fields.map((x, i) => toField(status, x, `${where}.fields[${i}]`, true))), (fields) =>
          ActionInputs.Fieldset.make({
            id: set.id,
            title: text(set.title) ?? set.id,
            fields: fields.filter((x): x is ActionInputs.InputField | ActionInputs.InfoField => x._tag !== "Fieldset")
          })
        )
    )
  }
  return Either.left(bad(status, `${where} is not a field`))
}

/** Decodes the body of `…/inputs` into fields. @internal */
export const decodeInputFields = (
  status: number,
  body: string
): Either.Either<ReadonlyArray<ActionInputs.Field>, BadBody> =>
  Either.flatMap(decodeFields(status, body), (envelope) =>
    Either.all(envelope.data.map((u, i) => toField(status, u, `data[${i}]`, false)))
  )

const pageOf = (u: unknown): number | undefined => {
  const n = typeof u === "number" ? u : typeof u === "string" ? Number(u) : Number.NaN
  return Number.isInteger(n) && n >= 1 ? n : undefined
}

const pageOfLink = (link: string): number | undefined => {
  try {
    return pageOf(new URL(link, "https://api.zapier.com").searchParams.get("page") ?? undefined)
  } catch {
    return undefined
  }
}

/** Decodes the body of `…/choices` (one envelope or an array of them) into a page. @internal */
export const decodeChoicesPage = (
  requested: number,
  status: number,
  body: string
): Either.Either<ActionInputs.ChoicesPage, BadBody> =>
  Either.map(decodeChoices(status, body), (envelope) => {
    const page = pageOf(envelope.meta?.page) ?? requested
    const next = envelope.links?.next
    const nextPage =
      typeof next === "string" && next.length > 0 && envelope.data.length > 0
        ? Math.max(pageOfLink(next) ?? page + 1, page + 1)
        : undefined
    return ActionInputs.ChoicesPage.make({
      choices: envelope.data.map((c) => {
        const label = text(c.label)
        return ActionInputs.Choice.make({
          id: text(c.id) ?? c.value,
          value: c.value,
          ...(label !== undefined ? { label } : {})
        })
      }),
      page,
      ...(nextPage !== undefined ? { nextPage } : {})
    })
  })

/** Decodes the body of `…/outputs` into output fields. @internal */
export const decodeOutputFields = (
  status: number,
  body: string
): Either.Either<ReadonlyArray<ActionInputs.OutputField>, BadBody> =>
  Either.map(decodeOutputs(status, body), (envelope) =>
    envelope.data.map((f) => {
      const title = text(f.title)
      return ActionInputs.OutputField.make({
        id: f.id,
        ...(title !== undefined ? { title } : {}),
        ...(f.sample !== undefined && f.sample !== null ? { sample: f.sample } : {})
      })
    })
  )

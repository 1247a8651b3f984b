/**
 * Area: actions and their fields (`GET /v2/actions`, the inputs, choices and outputs endpoints): the model's
 * lookups (a fresh id per lookup) and field computation, their routes, core's `ActionCatalog` in memory, and the
 * control method that adds an action.
 *
 * @internal
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { ActionCatalog, ActionInputs, Domain, Errors } from "@effect-zapier/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import type { ClientKit } from "../client.js"
import { ApiFailure } from "../model/failures.js"
import type { ActionRecord, IssuedAction, Kit } from "../model/state.js"
import { appendLedger, misuse, pruneActionIds, randomUuid, toActionRecord, userKey } from "../model/state.js"
import type { Routes, ServerKit } from "../server/kit.js"
import { Authentication, decodeQuery, describeIssue, Inputs, json, OptionalString } from "../server/kit.js"
import type * as FZ from "../types.js"

/** The endpoints of this area, as the ledger and fault rules name them. */
export const endpoints = {
  actions: "GET /v2/actions",
  inputs: "POST /v2/actions/{id}/inputs",
  choices: "POST /v2/actions/{id}/inputs/{input}/choices",
  outputs: "POST /v2/actions/{id}/outputs"
} as const

/** The control methods of this area. */
export interface ActionsControl {
  /** Adds (or replaces, by key) an action of an app. */
  readonly addAction: (app: string, action: FZ.ActionSeed) => Effect.Effect<void, Errors.NotFound>
}

// ---------------------------------------------------------------------------------------------------------------
// Fields
// ---------------------------------------------------------------------------------------------------------------

/** An input field as the model computed it for a set of inputs. */
export interface InputFieldView {
  readonly kind: "input"
  readonly id: string
  readonly title: string
  readonly description: string
  readonly required: boolean
  readonly default: string
  readonly placeholder: string
  readonly format: string | undefined
  readonly valueType: string
  readonly list: boolean
  readonly dependsOn: ReadonlyArray<string>
  readonly invalidates: boolean
}

export interface InfoFieldView {
  readonly kind: "info"
  readonly id: string
  readonly description: string
}

export interface FieldsetView {
  readonly kind: "fieldset"
  readonly id: string
  readonly title: string
  readonly fields: ReadonlyArray<InputFieldView | InfoFieldView>
}

export type FieldView = InputFieldView | InfoFieldView | FieldsetView

export interface ChoiceView {
  readonly id: string
  readonly label: string
  readonly value: string
}

export interface ChoicesView {
  readonly choices: ReadonlyArray<ChoiceView>
  readonly page: number
  readonly hasNext: boolean
}

export interface OutputFieldView {
  readonly id: string
  readonly title: string
  readonly sample: unknown
}

type InputValues = Readonly<Record<string, unknown>>

const seededFields = (action: ActionRecord, inputs: InputValues): ReadonlyArray<FZ.FieldSeed> => {
  const seed = action.inputFields
  return seed === undefined ? [] : typeof seed === "function" ? seed(inputs) : seed
}

const present = (field: FZ.InputFieldSeed, inputs: InputValues) => field.when === undefined || field.when(inputs)

const inputView = (field: FZ.InputFieldSeed): InputFieldView => ({
  kind: "input",
  id: field.id,
  title: field.title ?? field.id,
  description: field.description ?? "",
  required: field.required ?? false,
  default: field.default ?? "",
  placeholder: field.placeholder ?? "",
  format: field.format ?? (field.choices !== undefined ? "SELECT" : undefined),
  valueType: field.valueType ?? "STRING",
  list: field.list ?? false,
  dependsOn: field.dependsOn ?? [],
  invalidates: field.invalidates ?? false
})

/** The fields of an action for these inputs (dependent fields only while their `when` holds). */
const fieldViews = (action: ActionRecord, inputs: InputValues): ReadonlyArray<FieldView> =>
  seededFields(action, inputs).flatMap((f): ReadonlyArray<FieldView> => {
    if (f.type === "info") return [{ kind: "info", id: f.id, description: f.description }]
    if (f.type === "fieldset") {
      return [
        {
          kind: "fieldset",
          id: f.id,
          title: f.title,
          fields: f.fields.flatMap(
            (x): ReadonlyArray<InputFieldView | InfoFieldView> =>
              x.type === "info"
                ? [{ kind: "info", id: x.id, description: x.description }]
                : present(x, inputs)
                  ? [inputView(x)]
                  : []
          )
        }
      ]
    }
    return present(f, inputs) ? [inputView(f)] : []
  })

/** The seed of the input field `id` for these inputs, wherever it is. */
const findFieldSeed = (action: ActionRecord, inputs: InputValues, id: string): FZ.InputFieldSeed | undefined => {
  for (const f of seededFields(action, inputs)) {
    if (f.type === "info") continue
    if (f.type === "fieldset") {
      const inner = f.fields.find((x): x is FZ.InputFieldSeed => x.type !== "info" && x.id === id)
      if (inner !== undefined) return present(inner, inputs) ? inner : undefined
      continue
    }
    if (f.id === id) return present(f, inputs) ? f : undefined
  }
  return undefined
}

const choiceView = (c: FZ.ChoiceSeed): ChoiceView =>
  typeof c === "string"
    ? { id: c, label: c, value: c }
    : { id: c.id ?? c.value, label: c.label ?? c.value, value: c.value }
export interface FieldsInput {
  readonly authentication: string | null
  readonly inputs: Readonly<Record<string, unknown>>
}

// ---------------------------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------------------------

/** The model side: action lookups, fields, and `addAction`. */
export const model = (kit: Kit) => {
  const { settings, now, state } = kit

  const lookupActions = (user: Domain.EndUser, app: string, actionType: Domain.ActionType | undefined) =>
    Effect.gen(function* () {
      const t = yield* now
      const s = yield* Ref.get(state)
      const record = s.apps.find((a) => a.id === app)
      if (record === undefined) return yield* Effect.fail(ApiFailure.notFound(`app ${app}`, `App ${app} not found.`))
      const matching = record.actions.filter((a) => actionType === undefined || a.actionType === actionType)
      const issued: Array<IssuedAction> = []
      for (const a of matching) {
        issued.push({
          id: Domain.ActionId.make(`uag:${yield* randomUuid}`),
          app: record.id,
          key: a.key,
          actionType: a.actionType,
          title: a.title,
          description: a.description,
          isInstant: a.isInstant
        })
      }
      const key = userKey(user)
      yield* Ref.update(state, (s) =>
        appendLedger(
          pruneActionIds(
            {
              ...s,
              issued: s.issued + issued.length,
              actionIds: issued.reduce(
                (ids, action, i) => HashMap.set(ids, action.id, { userKey: key, action, seq: s.issued + i }),
                s.actionIds
              )
            },
            settings
          ),
          "lookups",
          { at: t, user, app: record.id, actionType, ids: issued.map((a) => a.id) }
        )
      )
      return issued
    })

  // --- fields ---------------------------------------------------------------------------------------------

  /** The action behind an id issued to this user, and a check of the authentication (as for a run). */
  const actionFor = (user: Domain.EndUser, actionId: string, authentication: string | null) =>
    Effect.gen(function* () {
      const s = yield* Ref.get(state)
      const key = userKey(user)
      const issued = HashMap.get(s.actionIds, actionId)
      if (Option.isNone(issued) || issued.value.userKey !== key) {
        return yield* Effect.fail(
          ApiFailure.notFound(
            `action ${actionId}`,
            "Unknown action id. Look the action up (GET /v2/actions) and use the id it returns."
          )
        )
      }
      const app = s.apps.find((a) => a.id === issued.value.action.app)
      const definition = app?.actions.find((a) => a.key === issued.value.action.key)
      if (app === undefined || definition === undefined) {
        return yield* Effect.fail(ApiFailure.notFound(`action ${actionId}`, "The action no longer exists."))
      }
      if (authentication !== null) {
        const found = HashMap.get(s.connections, authentication)
        if (Option.isNone(found) || found.value.userKey !== key || found.value.app !== app.id) {
          return yield* Effect.fail(
            ApiFailure.invalid(
              `Authentication ${authentication} was not found among this user's connections to ${app.id}.`,
              "authentication"
            )
          )
        }
      } else if (app.requiresAuth) {
        return yield* Effect.fail(ApiFailure.invalid(`${app.title} requires an authentication.`, "authentication"))
      }
      return definition
    })

  const inputFields = (user: Domain.EndUser, actionId: string, input: FieldsInput) =>
    Effect.map(actionFor(user, actionId, input.authentication), (action) => fieldViews(action, input.inputs))

  const choices = (
    user: Domain.EndUser,
    actionId: string,
    field: string,
    input: FieldsInput & { readonly page: number }
  ) =>
    Effect.gen(function* () {
      const action = yield* actionFor(user, actionId, input.authentication)
      if (!Number.isInteger(input.page) || input.page < 1) {
        return yield* Effect.fail(ApiFailure.invalid("page must be a whole number from 1.", "page"))
      }
      const seed = findFieldSeed(action, input.inputs, field)
      if (seed === undefined) {
        return yield* Effect.fail(ApiFailure.notFound(`input ${field}`, `The action has no input field ${field}.`))
      }
      if (seed.choices === undefined) {
        return yield* Effect.fail(ApiFailure.invalid(`The input field ${field} has no choices.`, "input_id"))
      }
      const all = (typeof seed.choices === "function" ? seed.choices(input.inputs) : seed.choices).map(choiceView)
      const size = settings.choicesPageSize
      const start = (input.page - 1) * size
      return {
        choices: all.slice(start, start + size),
        page: input.page,
        hasNext: start + size < all.length
      } satisfies ChoicesView
    })

  const outputFields = (user: Domain.EndUser, actionId: string, input: FieldsInput) =>
    Effect.map(actionFor(user, actionId, input.authentication), (action): ReadonlyArray<OutputFieldView> => {
      const seed = action.outputFields
      const fields = seed === undefined ? [] : typeof seed === "function" ? seed(input.inputs) : seed
      return fields.map((f) => ({ id: f.id, title: f.title ?? f.id, sample: f.sample }))
    })
  const findApp = (method: string, app: string) =>
    Effect.flatMap(Ref.get(state), (s) => {
      const found = s.apps.find((a) => a.id === app)
      return found ? Effect.succeed(found) : Effect.fail(misuse(method, `app ${app}`))
    })

  const control: ActionsControl = {
    addAction: Effect.fn("FakeZapier.addAction")(function* (app: string, action: FZ.ActionSeed) {
      yield* findApp("addAction", app)
      const record = toActionRecord(action)
      yield* Ref.update(state, (s) => ({
        ...s,
        apps: s.apps.map((a) =>
          a.id === app ? { ...a, actions: [...a.actions.filter((x) => x.key !== record.key), record] } : a
        )
      }))
    })
  }
  return { lookupActions, inputFields, choices, outputFields, control }
}

/** The model side of this area. */
export type Model = ReturnType<typeof model>

// ---------------------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------------------

const ChoicesQuery = Schema.Struct({
  page: Schema.optional(Schema.NumberFromString.pipe(Schema.int()))
})

const ActionsQuery = Schema.Struct({
  app: OptionalString,
  action_type: Schema.optional(Schema.Literal(...Domain.ActionType.literals.filter((t) => t !== "FILTER")))
})

/** The body of the inputs, choices and outputs endpoints: `{data: {authentication, inputs}}`. */
const FieldsBody = Schema.Struct({
  data: Schema.Struct({
    authentication: Authentication,
    inputs: Schema.optional(Schema.NullOr(Inputs))
  })
})

/** The lookup and field endpoints. */
export const routes = (server: ServerKit, m: Model): Routes => {
  const { api, url } = server

  const actions = api(endpoints.actions, (user) =>
    Effect.gen(function* () {
      const q = yield* decodeQuery(ActionsQuery)
      if (q.app === undefined || q.app.length === 0) {
        return yield* Effect.fail(ApiFailure.invalid("The app query parameter is required.", "app"))
      }
      const issued = yield* m.lookupActions(user, q.app, q.action_type)
      return json({
        links: { next: null, prev: null },
        meta: { count: issued.length, limit: null, offset: 0 },
        data: issued.map((a) => ({
          id: a.id,
          key: a.key,
          app: a.app,
          type: "action",
          action_type: a.actionType,
          is_instant: a.isInstant,
          title: a.title,
          description: a.description ?? ""
        }))
      })
    })
  )

  /** The `{data: {authentication, inputs}}` body of the field endpoints (`400 parse_error` when unreadable). */
  const fieldsBody = Effect.gen(function* () {
    const req = yield* HttpServerRequest.HttpServerRequest
    const text = yield* Effect.orElseSucceed(req.text, () => "")
    const parsed = Either.try(() => JSON.parse(text) as unknown)
    if (Either.isLeft(parsed)) return yield* Effect.fail(ApiFailure.parseError())
    const body = yield* Schema.decodeUnknown(FieldsBody)(parsed.right).pipe(
      Effect.mapError((e) => ApiFailure.invalid(`Invalid body: ${describeIssue(e)}`))
    )
    return { authentication: body.data.authentication, inputs: body.data.inputs ?? {} }
  })

  const inputFieldJson = (f: InputFieldView) => ({
    type: "input_field",
    id: f.id,
    title: f.title,
    description: f.description,
    default_value: f.default,
    placeholder: f.placeholder,
    is_required: f.required,
    depends_on: f.dependsOn,
    invalidates_input_fields: f.invalidates,
    value_type: f.list ? "ARRAY" : f.valueType,
    items: f.list ? { type: f.valueType } : {},
    // Zapier's example leaves `format` out of a field that has none.
    ...(f.format !== undefined ? { format: f.format } : {})
  })
  const infoFieldJson = (f: InfoFieldView) => ({ type: "info_field", id: f.id, description: f.description })
  const fieldJson = (f: FieldView) =>
    f.kind === "input"
      ? inputFieldJson(f)
      : f.kind === "info"
        ? infoFieldJson(f)
        : {
            type: "fieldset",
            id: f.id,
            title: f.title,
            fields: f.fields.map((x) => (x.kind === "input" ? inputFieldJson(x) : infoFieldJson(x)))
          }

  const inputs = api(endpoints.inputs, (user) =>
    Effect.gen(function* () {
      const params = yield* HttpRouter.params
      const body = yield* fieldsBody
      const fields = yield* m.inputFields(user, params.id ?? "", body)
      return json({
        links: { next: null, prev: null },
        meta: { count: fields.length, limit: null, offset: 0 },
        data: fields.map(fieldJson)
      })
    })
  )

  const choices = api(endpoints.choices, (user) =>
    Effect.gen(function* () {
      const params = yield* HttpRouter.params
      const q = yield* decodeQuery(ChoicesQuery)
      const body = yield* fieldsBody
      const id = params.id ?? ""
      const input = params.input ?? ""
      const view = yield* m.choices(user, id, input, { ...body, page: q.page ?? 1 })
      const link = (page: number) =>
        `${url}/v2/actions/${encodeURIComponent(id)}/inputs/${encodeURIComponent(input)}/choices?page=${page}`
      // Declared as an array of envelopes (Zapier's OpenAPI); served as one envelope.
      return json({
        data: view.choices.map((c) => ({ id: c.id, type: "choice", label: c.label, value: c.value })),
        links: { next: view.hasNext ? link(view.page + 1) : null, prev: view.page > 1 ? link(view.page - 1) : null },
        meta: { page: view.page }
      })
    })
  )

  const outputs = api(endpoints.outputs, (user) =>
    Effect.gen(function* () {
      const params = yield* HttpRouter.params
      const body = yield* fieldsBody
      const fields = yield* m.outputFields(user, params.id ?? "", body)
      return json({
        links: { next: null, prev: null },
        meta: { count: fields.length, limit: null, offset: 0 },
        data: fields.map((f) => ({ type: "output_field", id: f.id, title: f.title, sample: f.sample ?? null }))
      })
    })
  )

  return [
    HttpRouter.makeRoute("GET", "/v2/actions", actions),
    HttpRouter.makeRoute("POST", "/v2/actions/:id/inputs", inputs),
    HttpRouter.makeRoute("POST", "/v2/actions/:id/inputs/:input/choices", choices),
    HttpRouter.makeRoute("POST", "/v2/actions/:id/outputs", outputs)
  ]
}

// ---------------------------------------------------------------------------------------------------------------
// In memory
// ---------------------------------------------------------------------------------------------------------------

const isFormat = Schema.is(ActionInputs.InputFormat)
const isValueType = Schema.is(ActionInputs.ValueType)
const nonEmpty = <K extends string>(key: K, value: string): { readonly [k in K]?: string } =>
  (value.length > 0 ? { [key]: value } : {}) as { readonly [k in K]?: string }

const toInputField = (f: InputFieldView): ActionInputs.InputField =>
  ActionInputs.InputField.make({
    id: f.id,
    title: f.title,
    ...nonEmpty("description", f.description),
    required: f.required,
    ...nonEmpty("default", f.default),
    ...nonEmpty("placeholder", f.placeholder),
    ...(f.format !== undefined && isFormat(f.format) ? { format: f.format } : {}),
    ...(isValueType(f.valueType) ? { valueType: f.valueType } : {}),
    list: f.list,
    dependsOn: f.dependsOn,
    invalidates: f.invalidates
  })

const toField = (f: FieldView): ActionInputs.Field =>
  f.kind === "input"
    ? toInputField(f)
    : f.kind === "info"
      ? ActionInputs.InfoField.make({ id: f.id, description: f.description })
      : ActionInputs.Fieldset.make({
          id: f.id,
          title: f.title,
          fields: f.fields.map((x) =>
            x.kind === "input" ? toInputField(x) : ActionInputs.InfoField.make({ id: x.id, description: x.description })
          )
        })

/** Core's `ActionCatalog`, in memory. */
export const services = (client: ClientKit, m: Model) => {
  const { request } = client

  const lookup = (user: Domain.EndUser, app: Domain.AppId, actionType: Domain.ActionType | undefined) =>
    request(
      { method: "GET", endpoint: endpoints.actions, path: "/v2/actions" },
      user,
      m.lookupActions(user, app, actionType)
    ).pipe(
      Effect.catchTag("RunOutcomeUnknown", Effect.die),
      Effect.map((issued) =>
        issued.map((a) =>
          Domain.Action.make({
            id: a.id,
            key: a.key,
            app: a.app,
            actionType: a.actionType,
            title: a.title,
            isInstant: a.isInstant,
            ...(a.description !== undefined ? { description: a.description } : {})
          })
        )
      )
    )

  const catalog = ActionCatalog.ActionCatalog.of({
    list: Effect.fn("ActionCatalog.list")(function* (
      user: Domain.EndUser,
      app: Domain.AppId,
      options?: ActionCatalog.ListOptions
    ) {
      return yield* lookup(user, app, options?.actionType)
    }),
    resolve: Effect.fn("ActionCatalog.resolve")(function* (
      user: Domain.EndUser,
      app: Domain.AppId,
      key: Domain.ActionKey,
      actionType?: Domain.ActionType
    ) {
      const actions = yield* lookup(user, app, actionType)
      const found = actions.find((a) => a.key === key)
      if (found === undefined) {
        return yield* new Errors.ActionNotFound({ app, key, ...(actionType !== undefined ? { actionType } : {}) })
      }
      return found
    }),
    inputFields: Effect.fn("ActionCatalog.inputFields")(function* (
      user: Domain.EndUser,
      action: Domain.ActionId,
      fields: ActionCatalog.FieldsRequest
    ) {
      const views = yield* request(
        { method: "POST", endpoint: endpoints.inputs, path: `/v2/actions/${action}/inputs` },
        user,
        m.inputFields(user, action, { authentication: fields.connection, inputs: fields.inputs ?? {} })
      ).pipe(Effect.catchTag("RunOutcomeUnknown", Effect.die))
      return views.map(toField)
    }),
    choices: Effect.fn("ActionCatalog.choices")(function* (
      user: Domain.EndUser,
      action: Domain.ActionId,
      field: string,
      choices: ActionCatalog.ChoicesRequest
    ) {
      const page = choices.page ?? 1
      const view = yield* request(
        {
          method: "POST",
          endpoint: endpoints.choices,
          path: `/v2/actions/${action}/inputs/${encodeURIComponent(field)}/choices`
        },
        user,
        m.choices(user, action, field, {
          authentication: choices.connection,
          inputs: choices.inputs ?? {},
          page
        })
      ).pipe(Effect.catchTag("RunOutcomeUnknown", Effect.die))
      return ActionInputs.ChoicesPage.make({
        choices: view.choices.map((c) =>
          ActionInputs.Choice.make({ id: c.id, value: c.value, ...nonEmpty("label", c.label) })
        ),
        page: view.page,
        ...(view.hasNext ? { nextPage: view.page + 1 } : {})
      })
    }),
    outputFields: Effect.fn("ActionCatalog.outputFields")(function* (
      user: Domain.EndUser,
      action: Domain.ActionId,
      fields: ActionCatalog.FieldsRequest
    ) {
      const views = yield* request(
        { method: "POST", endpoint: endpoints.outputs, path: `/v2/actions/${action}/outputs` },
        user,
        m.outputFields(user, action, { authentication: fields.connection, inputs: fields.inputs ?? {} })
      ).pipe(Effect.catchTag("RunOutcomeUnknown", Effect.die))
      return views.map((f) =>
        ActionInputs.OutputField.make({
          id: f.id,
          ...nonEmpty("title", f.title),
          ...(f.sample !== undefined ? { sample: f.sample } : {})
        })
      )
    })
  })

  return Context.make(ActionCatalog.ActionCatalog, catalog)
}

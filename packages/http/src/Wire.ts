/**
 * Zapier's JSON on the wire (`snake_case`), as Zapier's White Label API reference describes it. Every schema ignores unknown
 * fields and accepts the documented conflicts: `links.prev` or `links.previous`, an app as an id or an expanded
 * object, numeric or string ids, `errors[].status` as an integer or a string, the `/v2/actions` envelope as an
 * object or an array of envelopes, and any run status (only `success` and `error` are terminal).
 *
 * These schemas decode responses and encode request bodies (every response schema of the client is here); mapping
 * onto core's domain happens in the live services behind `ZapierHttp`.
 *
 * @example
 * ```ts
 * import { Wire } from "@effect-zapier/http"
 * import { Schema } from "effect"
 *
 * const page = Schema.decodeUnknownSync(Wire.AuthenticationsPage)({
 *   links: { next: null, previous: null },
 *   data: [{ id: 12345, app: { id: "slack" }, is_expired: false }]
 * })
 * // page.data[0].id === "12345", page.data[0].app === "slack"
 * ```
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * A number accepted as an id only when it is a safe integer: JSON numbers are doubles, so anything beyond 2^53,
 * fractional or infinite (`1e400`) would print as another id (`12345678901234567891` as `12345678901234567000`).
 * The failure says the value is not a safe integer without quoting it.
 */
const SafeIntegerId = Schema.Number.pipe(
  Schema.filter((n) => Number.isSafeInteger(n) || "a numeric id must be a safe integer (send larger ids as strings)")
)

const NumberToString = Schema.transform(SafeIntegerId, Schema.String, {
  strict: true,
  decode: (n) => String(n),
  encode: (s) => Number(s)
})

/**
 * An id that Zapier may send as a string or a number; always a string once decoded. A number must be a safe
 * integer, else the id is refused (it could not be told apart from another id).
 * @since 0.1.0
 */
export const Id = Schema.Union(Schema.String, NumberToString)

const OptionalString = Schema.optional(Schema.NullOr(Schema.String))

/**
 * An app reference: its id, or an expanded App object (`{id, title, …}`); always the id once decoded.
 * @since 0.1.0
 */
export const AppRef = Schema.Union(
  Id,
  Schema.transform(Schema.Struct({ id: Id }), Schema.String, {
    strict: true,
    decode: (app) => app.id,
    encode: (id) => ({ id })
  })
)

/**
 * Pagination links: full URLs or `null`. `previous` is accepted as well as `prev`.
 * @since 0.1.0
 */
export const Links = Schema.Struct({
  next: OptionalString,
  prev: OptionalString,
  previous: OptionalString
})

/**
 * Pagination metadata (`count` = total, `limit`, `offset`).
 * @since 0.1.0
 */
export const Meta = Schema.Struct({
  count: Schema.optional(Schema.NullOr(Schema.Number)),
  limit: Schema.optional(Schema.NullOr(Schema.Number)),
  offset: Schema.optional(Schema.NullOr(Schema.Number))
})

// ---------------------------------------------------------------------------------------------------------------
// OAuth token endpoint
// ---------------------------------------------------------------------------------------------------------------

/**
 * A token's lifetime in seconds, as a number or a numeric string: it must be positive. Zero or negative (a token
 * that is already expired, or a broken answer) is refused rather than cached under a default lifetime.
 */
const ExpiresIn = Schema.Union(Schema.Number, Schema.NumberFromString).pipe(
  Schema.filter((n) => n > 0 || "expires_in must be a positive number of seconds")
)

/**
 * The token endpoint's success response. The token is `Redacted` as soon as it is decoded; `expires_in` is in
 * seconds and must be positive (absent: one hour for an access token, six minutes for a connect token; zero,
 * negative or not a number: the answer is refused as `InvalidResponse`, and nothing is cached).
 * @since 0.1.0
 */
export const TokenResponse = Schema.Struct({
  access_token: Schema.Redacted(Schema.NonEmptyString),
  token_type: OptionalString,
  expires_in: Schema.optional(Schema.NullOr(ExpiresIn)),
  scope: OptionalString,
  issued_token_type: OptionalString
})
/** @since 0.1.0 */
export type TokenResponse = typeof TokenResponse.Type

/**
 * An OAuth error (RFC 6749 §5.2): `{error, error_description}`.
 * @since 0.1.0
 */
export const OAuthError = Schema.Struct({
  error: Schema.String,
  error_description: OptionalString
})
/** @since 0.1.0 */
export type OAuthError = typeof OAuthError.Type

// ---------------------------------------------------------------------------------------------------------------
// The errors[] envelope
// ---------------------------------------------------------------------------------------------------------------

/**
 * One entry of Zapier's `errors[]`; `status` may be an integer or a string.
 * @since 0.1.0
 */
export const ApiError = Schema.Struct({
  status: Schema.optional(Schema.NullOr(Schema.Union(Schema.Number, Schema.NumberFromString))),
  code: OptionalString,
  title: OptionalString,
  detail: OptionalString
})
/** @since 0.1.0 */
export type ApiError = typeof ApiError.Type

/**
 * Zapier's error envelope: `{errors: [{status, code, title, detail, source, meta}]}`.
 * @since 0.1.0
 */
export const ErrorEnvelope = Schema.Struct({ errors: Schema.Array(ApiError) })
/** @since 0.1.0 */
export type ErrorEnvelope = typeof ErrorEnvelope.Type

// ---------------------------------------------------------------------------------------------------------------
// Authentications (connections)
// ---------------------------------------------------------------------------------------------------------------

/**
 * One item of `GET /v2/authentications`.
 * @since 0.1.0
 */
export const Authentication = Schema.Struct({
  type: OptionalString,
  id: Id,
  app: AppRef,
  is_expired: Schema.Boolean,
  title: OptionalString
})
/** @since 0.1.0 */
export type Authentication = typeof Authentication.Type

/**
 * A page of `GET /v2/authentications`.
 * @since 0.1.0
 */
export const AuthenticationsPage = Schema.Struct({
  links: Schema.optional(Schema.NullOr(Links)),
  meta: Schema.optional(Schema.NullOr(Meta)),
  data: Schema.Array(Authentication)
})
/** @since 0.1.0 */
export type AuthenticationsPage = typeof AuthenticationsPage.Type

// ---------------------------------------------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------------------------------------------

/**
 * One item of `GET /v2/actions`. `action_type` is kept as sent (the client upper-cases it and skips types it does
 * not know).
 * @since 0.1.0
 */
export const Action = Schema.Struct({
  id: Id,
  key: Schema.String,
  app: Schema.optional(Schema.NullOr(AppRef)),
  type: OptionalString,
  action_type: Schema.String,
  is_instant: Schema.optional(Schema.NullOr(Schema.Boolean)),
  title: OptionalString,
  description: OptionalString
})
/** @since 0.1.0 */
export type Action = typeof Action.Type

/**
 * A list response: one envelope `{links, meta, data}`, or (as Zapier's OpenAPI declares its list responses) an
 * array of envelopes, which are merged (the last one's links and meta, every item). `meta` defaults to
 * {@link Meta}; endpoints whose meta differs (choices: `{page}`) pass their own.
 * @since 0.1.0
 */
export const OneOrManyPages = <A, I, M = typeof Meta.Type, MI = typeof Meta.Encoded>(
  item: Schema.Schema<A, I>,
  meta: Schema.Schema<M, MI> = Meta as unknown as Schema.Schema<M, MI>
) => {
  const one = Schema.Struct({
    links: Schema.optional(Schema.NullOr(Links)),
    meta: Schema.optional(Schema.NullOr(meta)),
    data: Schema.Array(item)
  })
  return Schema.Union(
    one,
    Schema.transform(Schema.Array(one), Schema.typeSchema(one), {
      strict: true,
      decode: (pages) => ({
        links: pages.at(-1)?.links ?? null,
        meta: pages.at(-1)?.meta ?? null,
        data: pages.flatMap((page) => page.data)
      }),
      encode: (page) => [page]
    })
  )
}

/**
 * A page of `GET /v2/actions`.
 * @since 0.1.0
 */
export const ActionsPage = OneOrManyPages(Action)
/** @since 0.1.0 */
export type ActionsPage = typeof ActionsPage.Type

// ---------------------------------------------------------------------------------------------------------------
// Apps
// ---------------------------------------------------------------------------------------------------------------

/**
 * One item of `GET /v2/apps`: `{id, type: "app", title, description, image, images{url_16x16…}, action_types, …}`.
 * @since 0.1.0
 */
export const App = Schema.Struct({
  id: Id,
  type: OptionalString,
  title: OptionalString,
  description: OptionalString,
  image: OptionalString,
  images: Schema.optional(Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.Unknown }))),
  action_types: Schema.optional(Schema.NullOr(Schema.Array(Schema.String)))
})
/** @since 0.1.0 */
export type App = typeof App.Type

/**
 * A page of `GET /v2/apps`: one envelope, or an array of envelopes (merged).
 * @since 0.1.0
 */
export const AppsPage = OneOrManyPages(App)
/** @since 0.1.0 */
export type AppsPage = typeof AppsPage.Type

// ---------------------------------------------------------------------------------------------------------------
// Fields (inputs, choices, outputs)
// ---------------------------------------------------------------------------------------------------------------

const Str = Schema.optional(Schema.NullOr(Schema.String))
const Bool = Schema.optional(Schema.NullOr(Schema.Boolean))
const Scalar = Schema.Union(
  Schema.String,
  Schema.transform(Schema.Union(Schema.Number, Schema.Boolean), Schema.String, {
    strict: false,
    decode: (v) => String(v),
    encode: (s) => s
  })
)

/**
 * `{type: "input_field", id, title, description, default_value, placeholder, is_required, …}`
 * @since 0.1.0
 */
export const InputField = Schema.Struct({
  type: Str,
  id: Schema.compose(Id, Schema.NonEmptyString),
  title: Str,
  description: Str,
  default_value: Schema.optional(Schema.NullOr(Scalar)),
  placeholder: Str,
  is_required: Bool,
  depends_on: Schema.optional(Schema.NullOr(Schema.Array(Schema.String))),
  invalidates_input_fields: Bool,
  format: Str,
  value_type: Str,
  items: Schema.optional(Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.Unknown })))
})
/** @since 0.1.0 */
export type InputField = typeof InputField.Type

/**
 * `{type: "info_field", id, description}`
 * @since 0.1.0
 */
export const InfoField = Schema.Struct({ type: Str, id: Id, description: Str })
/** @since 0.1.0 */
export type InfoField = typeof InfoField.Type

/**
 * `{type: "fieldset", id, title, fields: [InputField | InfoField]}`
 * @since 0.1.0
 */
export const Fieldset = Schema.Struct({
  type: Str,
  id: Id,
  title: Str,
  fields: Schema.Array(Schema.Unknown)
})
/** @since 0.1.0 */
export type Fieldset = typeof Fieldset.Type

const AnyMeta = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/**
 * The list envelope of the field endpoints (inputs, choices, outputs): one envelope, or an array of them, merged;
 * their `meta` varies (`{page}` for choices), so any object is accepted.
 * @since 0.1.0
 */
export const FieldsEnvelope = <A, I>(item: Schema.Schema<A, I>) => OneOrManyPages(item, AnyMeta)

/**
 * `{id, type: "choice", label, value}`
 * @since 0.1.0
 */
export const Choice = Schema.Struct({
  id: Schema.optional(Schema.NullOr(Scalar)),
  type: Str,
  label: Str,
  value: Scalar
})
/** @since 0.1.0 */
export type Choice = typeof Choice.Type

/**
 * `{type: "output_field", id, title, sample}`
 * @since 0.1.0
 */
export const OutputField = Schema.Struct({
  type: Str,
  id: Id,
  title: Str,
  sample: Schema.optional(Schema.Unknown)
})
/** @since 0.1.0 */
export type OutputField = typeof OutputField.Type

// ---------------------------------------------------------------------------------------------------------------
// Action runs
// ---------------------------------------------------------------------------------------------------------------

/**
 * The create-run body as the White Label guides document it: flat, with a singular `input`.
 * @since 0.1.0
 */
export const CreateRunFlat = Schema.Struct({
  action: Schema.String,
  authentication: Schema.NullOr(Schema.String),
  input: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  callback_url: Schema.optional(Schema.String)
})

/**
 * The create-run body as Zapier's OpenAPI declares it: wrapped in `data`, with a plural `inputs`.
 * @since 0.1.0
 */
export const CreateRunData = Schema.Struct({
  data: Schema.Struct({
    action: Schema.String,
    authentication: Schema.NullOr(Schema.String),
    inputs: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
    callback_url: Schema.optional(Schema.String)
  })
})

/**
 * The create-run response: `{data: {type: "run", id}}`.
 * @since 0.1.0
 */
export const CreateRunResponse = Schema.Struct({
  data: Schema.Struct({
    type: OptionalString,
    id: Id
  })
})
/** @since 0.1.0 */
export type CreateRunResponse = typeof CreateRunResponse.Type

/**
 * One error of a run (`delay` is in seconds when the run was throttled).
 * @since 0.1.0
 */
export const RunError = Schema.Struct({
  code: OptionalString,
  title: OptionalString,
  detail: OptionalString,
  delay: Schema.optional(Schema.NullOr(Schema.Number))
})
/** @since 0.1.0 */
export type RunError = typeof RunError.Type

/**
 * `GET /v2/action-runs/{id}/`: `status` is any string (`waiting`, `queued`, `running`, … are pending; only
 * `success` and `error` are terminal); `results` may be an array or a single object.
 * @since 0.1.0
 */
export const Run = Schema.Struct({
  data: Schema.Struct({
    type: OptionalString,
    id: Schema.optional(Schema.NullOr(Id)),
    status: OptionalString,
    results: Schema.optional(Schema.NullOr(Schema.Union(Schema.Array(Schema.Unknown), Schema.Object))),
    errors: Schema.optional(Schema.NullOr(Schema.Array(RunError)))
  })
})
/** @since 0.1.0 */
export type Run = typeof Run.Type

/**
 * Core's four services served straight from the model: what a client would do over HTTP (one cached access token
 * per user, one refresh-and-retry on a 401), without the HTTP.
 *
 * @internal
 */
import {
  ActionCatalog,
  ActionInputs,
  ActionRuns,
  Apps,
  Connections,
  Domain,
  Errors,
  TokenExchange
} from "@effect-zapier/core"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as SynchronizedRef from "effect/SynchronizedRef"
import { Endpoint } from "../FakeZapier.js"
import type { AppRecord, FieldView, InputFieldView, Model, OAuthFailure, RawAnswer } from "./model.js"
import { ApiFailure, connectResource, dateTime, oauthFromApi, userKey } from "./model.js"

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

const toApp = (a: AppRecord): Apps.App =>
  Apps.App.make({
    id: a.id,
    title: a.title,
    ...(a.description !== undefined && a.description.length > 0 ? { description: a.description } : {}),
    actionTypes: [...new Set(a.actions.map((x) => x.actionType))]
  })

/** Why one attempt failed, before it is mapped to core's errors. */
type Failure =
  | { readonly _tag: "Api"; readonly failure: ApiFailure }
  | { readonly _tag: "Drop" }
  | { readonly _tag: "Malformed" }

/** The in-memory layer has no wire: a `Respond` fault counts by its status (a 2xx as a body that does not decode). */
const fromRaw = (answer: RawAnswer, now: number): Failure => {
  if (answer.status >= 200 && answer.status < 300) return { _tag: "Malformed" }
  const header = answer.headers["retry-after"] ?? answer.headers["Retry-After"]
  const date = header !== undefined && !/^\d+$/.test(header.trim()) ? Date.parse(header) : Number.NaN
  const seconds =
    header === undefined
      ? undefined
      : Number.isNaN(date)
        ? Number(header.trim())
        : Math.max(0, Math.ceil((date - now) / 1000))
  return {
    _tag: "Api",
    failure: ApiFailure.fromStatus(
      answer.status,
      undefined,
      undefined,
      seconds !== undefined && Number.isFinite(seconds) ? Duration.seconds(seconds) : undefined
    )
  }
}

const toError = (
  endpoint: string,
  failure: Failure,
  create: boolean
): Errors.RequestError | Errors.RunOutcomeUnknown => {
  if (failure._tag === "Drop") {
    return create
      ? new Errors.RunOutcomeUnknown({ endpoint, reason: "the connection was reset before an answer arrived" })
      : new Errors.ZapierUnavailable({ endpoint, reason: "the connection was reset" })
  }
  if (failure._tag === "Malformed") {
    return create
      ? new Errors.RunOutcomeUnknown({ endpoint, reason: "the answer was not JSON", status: 200 })
      : new Errors.InvalidResponse({ endpoint, reason: "the body is not JSON", status: 200 })
  }
  const f = failure.failure
  if (f.status === 429) {
    return new Errors.RateLimited({ endpoint, retryAfter: Duration.seconds(f.retryAfterSeconds ?? 60) })
  }
  if (f.status === 401 || f.status === 403) {
    return new Errors.Unauthorized({ endpoint, status: f.status, detail: f.detail })
  }
  if (f.status === 404) return new Errors.NotFound({ endpoint, resource: f.resource ?? f.detail })
  if (f.status >= 500) {
    return create
      ? new Errors.RunOutcomeUnknown({ endpoint, reason: `HTTP ${f.status} ${f.title}`, status: f.status })
      : new Errors.ZapierUnavailable({ endpoint, reason: f.title, status: f.status })
  }
  return new Errors.BadRequest({
    endpoint,
    errors: [Errors.ApiError.make({ code: f.code, title: f.title, detail: f.detail, status: f.status })]
  })
}

const exchangeError = (failure: Failure | OAuthFailure): TokenExchange.ExchangeError => {
  const endpoint = Endpoint.token
  if ("error" in failure) {
    if (failure.status === 429) {
      return new Errors.RateLimited({ endpoint, retryAfter: Duration.seconds(failure.retryAfterSeconds ?? 60) })
    }
    if (failure.status >= 500) {
      return new Errors.ZapierUnavailable({ endpoint, reason: failure.error, status: failure.status })
    }
    return new Errors.TokenExchangeFailed({
      error: failure.error,
      description: failure.description,
      status: failure.status
    })
  }
  if (failure._tag === "Api") return exchangeError(oauthFromApi(failure.failure))
  return failure._tag === "Drop"
    ? new Errors.ZapierUnavailable({ endpoint, reason: "the connection was reset" })
    : new Errors.InvalidResponse({ endpoint, reason: "the body is not JSON", status: 200 })
}

/**
 * Runs one request through the model's gate (fault plan, rate limit), the body, and the ledger.
 * Fails with the raw failure; the caller maps it.
 */
const through = <A, E>(
  model: Model,
  info: { readonly method: string; readonly endpoint: string; readonly path: string; readonly user: Domain.EndUser },
  body: Effect.Effect<A, E>,
  statusOf: (e: E) => number
): Effect.Effect<A, E | Failure> =>
  Effect.gen(function* () {
    const gate = yield* model.gate(info)
    const record = (status: number) =>
      model.record({ method: info.method, endpoint: info.endpoint, path: info.path, status, user: info.user })
    if (gate._tag === "Drop") {
      yield* record(0)
      return yield* Effect.fail<Failure>({ _tag: "Drop" })
    }
    if (gate._tag === "Fail") {
      yield* record(gate.failure.status)
      return yield* Effect.fail<Failure>({ _tag: "Api", failure: gate.failure })
    }
    if (gate._tag === "Raw") {
      yield* record(gate.answer.status)
      return yield* Effect.fail<Failure>(fromRaw(gate.answer, yield* model.now))
    }
    if (gate.delay !== undefined) yield* model.clock.sleep(gate.delay)
    const result = yield* Effect.either(body)
    const after = gate.after
    if (after !== undefined) {
      yield* record(
        after._tag === "Fail"
          ? after.failure.status
          : after._tag === "Drop"
            ? 0
            : after._tag === "Raw"
              ? after.answer.status
              : 200
      )
      return yield* Effect.fail<Failure>(
        after._tag === "Fail"
          ? { _tag: "Api", failure: after.failure }
          : after._tag === "Raw"
            ? fromRaw(after.answer, yield* model.now)
            : after
      )
    }
    if (result._tag === "Left") {
      yield* record(statusOf(result.left))
      return yield* Effect.fail(result.left)
    }
    yield* record(200)
    return result.right
  })

/** Builds the four services over a model. */
export const make = (model: Model) =>
  Effect.gen(function* () {
    const cache = yield* SynchronizedRef.make(HashMap.empty<string, Domain.AccessToken>())
    const ttl = model.settings.accessTokenTtlSeconds
    const refreshAheadMillis = Math.min(300, ttl / 2) * 1000

    const exchange = (user: Domain.EndUser) =>
      Effect.gen(function* () {
        const issued = yield* through(
          model,
          { method: "POST", endpoint: Endpoint.token, path: "/oauth/token", user },
          model.exchangeAccess(user, undefined),
          () => 400
        )
        return Domain.AccessToken.make({
          value: Redacted.make(issued.token),
          expiresAt: dateTime(issued.issuedAt + issued.expiresIn * 1000),
          scope: issued.scope
        })
      }).pipe(Effect.mapError(exchangeError))

    const accessToken = Effect.fn("TokenExchange.accessToken")(function* (user: Domain.EndUser) {
      const key = userKey(user)
      return yield* SynchronizedRef.modifyEffect(cache, (tokens) =>
        Effect.gen(function* () {
          const cached = HashMap.get(tokens, key)
          const t = yield* model.now
          if (Option.isSome(cached) && cached.value.expiresAt.epochMillis - refreshAheadMillis > t) {
            return [cached.value, tokens] as const
          }
          const fresh = yield* exchange(user)
          return [fresh, HashMap.set(tokens, key, fresh)] as const
        })
      )
    })

    const invalidate = Effect.fn("TokenExchange.invalidate")(function* (
      user: Domain.EndUser,
      failed?: Domain.AccessToken
    ) {
      const key = userKey(user)
      yield* SynchronizedRef.update(cache, (tokens) => {
        const cached = HashMap.get(tokens, key)
        if (Option.isNone(cached)) return tokens
        if (failed !== undefined && Redacted.value(cached.value.value) !== Redacted.value(failed.value)) return tokens
        return HashMap.remove(tokens, key)
      })
    })

    /** One exchange of the access token for a connect token; a refused subject token is refreshed once. */
    const connectToken = Effect.fn("TokenExchange.connectToken")(function* (user: Domain.EndUser, app: Domain.AppId) {
      const resource = connectResource(model.settings.connectUrl, app)
      const once = (token: Domain.AccessToken) =>
        through(
          model,
          { method: "POST", endpoint: Endpoint.token, path: "/oauth/token", user },
          model.exchangeConnect(Redacted.value(token.value), resource, "connection:write"),
          (e: OAuthFailure) => e.status
        ).pipe(Effect.mapError(exchangeError))
      const first = yield* accessToken(user)
      const issued = yield* once(first).pipe(
        Effect.catchIf(
          (e) => e._tag === "TokenExchangeFailed" && e.error === "invalid_grant",
          () => Effect.zipRight(invalidate(user, first), Effect.flatMap(accessToken(user), once))
        )
      )
      return Domain.ConnectToken.make({
        value: Redacted.make(issued.token),
        expiresAt: dateTime(issued.issuedAt + issued.expiresIn * 1000),
        app
      })
    })

    /** An API request as the user: the cached token, and one refresh-and-retry on a 401. */
    const request = <A>(
      info: { readonly method: string; readonly endpoint: string; readonly path: string },
      user: Domain.EndUser,
      body: Effect.Effect<A, ApiFailure>,
      create = false
    ): Effect.Effect<A, Errors.RequestError | Errors.RunOutcomeUnknown> => {
      const attempt = (token: Domain.AccessToken) =>
        Effect.gen(function* () {
          const owner = yield* Effect.either(model.authenticate(Redacted.value(token.value)))
          if (owner._tag === "Left") {
            yield* model.record({ ...info, status: 401, user })
            return yield* Effect.fail<Failure>({ _tag: "Api", failure: owner.left })
          }
          return yield* through(
            model,
            { ...info, user: owner.right },
            Effect.mapError(body, (failure): Failure => ({ _tag: "Api", failure })),
            (f) => (f._tag === "Api" ? f.failure.status : 0)
          )
        })
      const mapped = (token: Domain.AccessToken) =>
        Effect.mapError(attempt(token), (f) => toError(info.endpoint, f, create))
      return Effect.gen(function* () {
        const token = yield* accessToken(user)
        return yield* mapped(token).pipe(
          Effect.catchIf(
            (e) => e._tag === "Unauthorized" && e.status === 401,
            () => Effect.zipRight(invalidate(user, token), Effect.flatMap(accessToken(user), mapped))
          )
        )
      })
    }

    const tokens = TokenExchange.TokenExchange.of({ accessToken, connectToken, invalidate })

    const connections = Connections.Connections.of({
      list: Effect.fn("Connections.list")(function* (user: Domain.EndUser, app: Domain.AppId) {
        const page = yield* request(
          { method: "GET", endpoint: Endpoint.authentications, path: "/v2/authentications" },
          user,
          model.listConnections(user, app, Number.MAX_SAFE_INTEGER, 0)
        ).pipe(Effect.catchTag("RunOutcomeUnknown", Effect.die))
        return page.items.map((c) =>
          Domain.Connection.make({ id: c.id, app: c.app, title: c.title, isExpired: c.isExpired })
        )
      }),
      connectLink: Effect.fn("Connections.connectLink")(function* (
        user: Domain.EndUser,
        app: Domain.AppId,
        options?: Connections.ConnectLinkOptions
      ) {
        const token = yield* connectToken(user, app)
        const url = new URL(connectResource(model.settings.connectUrl, app))
        url.searchParams.set("token", Redacted.value(token.value))
        if (options?.state !== undefined) url.searchParams.set("state", options.state)
        if (options?.reconnect !== undefined) url.searchParams.set("reconnect_id", options.reconnect)
        if (options?.redirectUri !== undefined) url.searchParams.set("redirect_uri", options.redirectUri)
        if (options?.theme !== undefined) url.searchParams.set("theme", options.theme)
        return Domain.ConnectLink.make({
          url: url.toString(),
          app,
          expiresAt: token.expiresAt,
          ...(options?.reconnect !== undefined ? { reconnect: options.reconnect } : {}),
          ...(options?.state !== undefined ? { state: options.state } : {})
        })
      })
    })

    const lookup = (user: Domain.EndUser, app: Domain.AppId, actionType: Domain.ActionType | undefined) =>
      request(
        { method: "GET", endpoint: Endpoint.actions, path: "/v2/actions" },
        user,
        model.lookupActions(user, app, actionType)
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
          { method: "POST", endpoint: Endpoint.inputs, path: `/v2/actions/${action}/inputs` },
          user,
          model.inputFields(user, action, { authentication: fields.connection, inputs: fields.inputs ?? {} })
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
            endpoint: Endpoint.choices,
            path: `/v2/actions/${action}/inputs/${encodeURIComponent(field)}/choices`
          },
          user,
          model.choices(user, action, field, {
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
          { method: "POST", endpoint: Endpoint.outputs, path: `/v2/actions/${action}/outputs` },
          user,
          model.outputFields(user, action, { authentication: fields.connection, inputs: fields.inputs ?? {} })
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

    const listApps = (user: Domain.EndUser, options: Apps.ListOptions | undefined) =>
      Effect.gen(function* () {
        const limit = Math.max(1, Math.min(options?.limit ?? 10, 100))
        const offset = Math.max(0, options?.offset ?? 0)
        const page = yield* request(
          { method: "GET", endpoint: Endpoint.apps, path: "/v2/apps" },
          user,
          model.listApps({
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
        if (found === undefined) return yield* new Errors.NotFound({ endpoint: Endpoint.apps, resource: `app ${app}` })
        return found
      })
    })

    const runs = ActionRuns.ActionRuns.of({
      create: Effect.fn("ActionRuns.create")(function* (user: Domain.EndUser, run: ActionRuns.CreateRun) {
        return yield* request(
          { method: "POST", endpoint: Endpoint.createRun, path: "/v2/action-runs/" },
          user,
          model.createRun(user, {
            action: run.action,
            authentication: run.connection,
            inputs: run.inputs,
            callbackUrl: run.callbackUrl
          }),
          true
        )
      }),
      get: Effect.fn("ActionRuns.get")(function* (user: Domain.EndUser, runId: Domain.ActionRunId) {
        const view = yield* request(
          { method: "GET", endpoint: Endpoint.getRun, path: `/v2/action-runs/${runId}/` },
          user,
          model.getRun(user, runId)
        ).pipe(Effect.catchTag("RunOutcomeUnknown", Effect.die))
        switch (view.status) {
          case "waiting":
            return new Domain.RunPending({ runId, status: view.status })
          case "success":
            return new Domain.RunSucceeded({ runId, results: view.results })
          case "error":
            return new Domain.RunFailed({
              runId,
              errors: view.errors.map((e) =>
                Domain.RunError.make({
                  code: e.code,
                  title: e.title,
                  ...(e.detail !== undefined ? { detail: e.detail } : {}),
                  ...(e.delaySeconds !== undefined ? { delay: Duration.seconds(e.delaySeconds) } : {})
                })
              )
            })
        }
      })
    })

    return { tokens, connections, catalog, runs, apps }
  })

/** The four services over a model, as one layer. */
export const layer = (model: Model) =>
  Layer.effectContext(
    Effect.map(make(model), (s) =>
      Context.make(TokenExchange.TokenExchange, s.tokens).pipe(
        Context.add(Connections.Connections, s.connections),
        Context.add(ActionCatalog.ActionCatalog, s.catalog),
        Context.add(ActionRuns.ActionRuns, s.runs),
        Context.add(Apps.Apps, s.apps)
      )
    )
  )

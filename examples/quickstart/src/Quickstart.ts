/**
 * The quickstart's program: the five steps for one end user, printed as they happen. It needs the four
 * services, `EmbeddedActions`, and a `ConnectStep` that plays the end user's part in Connect UI (following the
 * link as a browser would against the fake, or printing it for a person against Zapier).
 */

import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import {
  ActionCatalog,
  ActionInputs,
  ActionRuns,
  Apps,
  Connections,
  type Domain,
  EmbeddedActions,
  Errors,
  TokenExchange
} from "@effect-zapier/core"
import { Console, Context, Data, DateTime, Duration, Effect, Layer } from "effect"

/** What the quickstart runs. */
export interface Options {
  readonly user: Domain.EndUser
  readonly app: Domain.AppId
  readonly action: Domain.ActionKey
  readonly actionType: Domain.ActionType
  readonly inputs: Readonly<Record<string, unknown>>
  /** The partner's callback URL that Connect UI redirects to. */
  readonly redirectUri: string
}

/** Plays the end user's part: turns a Connect link into a stored, verified connection. */
export class ConnectStep extends Context.Tag("quickstart/ConnectStep")<
  ConnectStep,
  {
    readonly connect: (user: Domain.EndUser, link: Domain.ConnectLink) => Effect.Effect<Domain.Connection, unknown>
  }
>() {}

/** A link with its connect token masked, for printing. */
export const maskToken = (url: string): string => {
  const parsed = new URL(url)
  if (parsed.searchParams.has("token")) parsed.searchParams.set("token", "<redacted>")
  if (parsed.searchParams.has("state"))
    parsed.searchParams.set("state", `${parsed.searchParams.get("state")!.slice(0, 6)}…`)
  return parsed.toString().replace("%3Credacted%3E", "<redacted>")
}

/** The Connect link could not be written for the person who must open it. */
export class LinkNotWritten extends Data.TaggedError("LinkNotWritten")<{ readonly reason: string }> {
  override get message(): string {
    return `The Connect link could not be written to a private file (${this.reason}); check the temp folder.`
  }
}

/**
 * Hands a Connect link to the person at the terminal without printing its token: the link is printed masked, and
 * the whole link is written to a file only this user can read (the token lets whoever has it attach their own
 * account to this end user, and terminal output ends up in scrollback, logs and screenshots). Returns the file.
 */
export const handOver = (url: string, dir: string = Os.tmpdir()) =>
  Effect.gen(function* () {
    const file = yield* Effect.try({
      try: () => {
        const folder = Fs.mkdtempSync(Path.join(dir, "effect-zapier-connect-"))
        const target = Path.join(folder, "connect-link.txt")
        Fs.writeFileSync(target, `${url}\n`, { mode: 0o600 })
        return target
      },
      catch: (e) => new LinkNotWritten({ reason: e instanceof Error ? e.message : String(e) })
    })
    yield* Console.log(
      `      open the Connect link in a browser to connect (valid for 6 minutes): ${maskToken(url)}\n` +
        `      the whole link is in ${file} (it holds a single-use token: open it, do not share it)`
    )
    return file
  })

const ms = (d: Duration.Duration) => `${Math.round(Duration.toMillis(d))} ms`

/** One short line per input field: `· channel (Channel): string, required, dropdown`. */
export const describeField = (field: ActionInputs.InputField): string => {
  const type = field.valueType?.toLowerCase() ?? "any value"
  const traits = [
    field.list ? `list of ${type}` : type,
    ...(field.needsValue ? ["required"] : []),
    ...(field.isSelect ? ["dropdown"] : field.format !== undefined ? [field.format.toLowerCase()] : []),
    ...(field.default !== undefined ? [`default ${JSON.stringify(field.default)}`] : []),
    ...(field.invalidates ? ["changes the other fields"] : [])
  ]
  return `      · ${field.id} (${field.title}): ${traits.join(", ")}`
}

/** Prints every poll's status, as a decorator over any `ActionRuns` (the same trick works for metrics). */
export const logPolls: Layer.Layer<ActionRuns.ActionRuns, never, ActionRuns.ActionRuns> = Layer.effect(
  ActionRuns.ActionRuns,
  Effect.gen(function* () {
    const runs = yield* ActionRuns.ActionRuns
    const startedAt = new Map<string, number>()
    return ActionRuns.ActionRuns.of({
      create: (user, run) =>
        runs.create(user, run).pipe(Effect.tap((id) => Effect.sync(() => startedAt.set(id, performance.now())))),
      get: (user, runId) =>
        runs.get(user, runId).pipe(
          Effect.tap((state) => {
            const since = ((performance.now() - (startedAt.get(runId) ?? performance.now())) / 1000).toFixed(1)
            const status =
              state._tag === "RunPending" ? state.status : state._tag === "RunSucceeded" ? "success" : "error"
            return Console.log(`      poll: ${status} (${since} s after create)`)
          })
        )
    })
  })
)

/**
 * Checks the chosen app and action before anything else (two list requests), so a typo is said plainly, with what
 * there is to choose from, instead of surfacing later in Connect UI or at the lookup.
 */
export const checkChoice = (options: Options) =>
  Effect.gen(function* () {
    const apps = yield* Apps.Apps
    const catalog = yield* ActionCatalog.ActionCatalog
    const { app, user } = options
    const known = yield* apps.get(user, app).pipe(
      Effect.as(true),
      Effect.catchTag("NotFound", () => Effect.succeed(false))
    )
    if (!known) {
      const offered = yield* apps.list(user, { limit: 20 })
      const names = offered.apps.map((a) => `${a.id} (${a.title})`).join(", ")
      const more = (offered.count ?? 0) > offered.apps.length ? ", among others" : ""
      return yield* Effect.fail(`NotFound: there is no app "${app}". Apps offered${more} (--app): ${names}`)
    }
    const actions = yield* catalog.list(user, app)
    if (!actions.some((a) => a.key === options.action && a.actionType === options.actionType)) {
      const error = new Errors.ActionNotFound({ app, key: options.action, actionType: options.actionType })
      const offered = actions.map((a) => `${a.key} (--type ${a.actionType})`).join(", ")
      return yield* Effect.fail(`${error._tag}: ${error.message} ${app} offers (--action): ${offered || "no actions"}`)
    }
  })

/** The five steps. Returns the run's result. */
export const program = (options: Options) =>
  Effect.gen(function* () {
    const tokens = yield* TokenExchange.TokenExchange
    const connections = yield* Connections.Connections
    const actions = yield* EmbeddedActions.EmbeddedActions
    const catalog = yield* ActionCatalog.ActionCatalog
    const connectStep = yield* ConnectStep
    const { app, user } = options

    yield* Console.log(
      `End user ${user.userId} of tenant ${user.tenantId} · app ${app} · action ${options.action} (${options.actionType})\n`
    )

    const [t1, token] = yield* Effect.timed(tokens.accessToken(user))
    const expiresIn = DateTime.distanceDuration(yield* DateTime.now, token.expiresAt)
    yield* Console.log(
      `[1/5] Token exchange: signed a partner JWT for ${user.userId}@${user.tenantId} and exchanged it for an access token ` +
        `(${token.value}, scope "${token.scope}", expires in ${Duration.format(Duration.seconds(Math.round(Duration.toSeconds(expiresIn))))})  ${ms(t1)}`
    )

    yield* checkChoice(options)

    const [t2, listed] = yield* Effect.timed(connections.list(user, app))
    const valid = listed.filter((c) => !c.isExpired)
    yield* Console.log(`[2/5] Connections: ${listed.length} connection(s) to ${app}, ${valid.length} valid  ${ms(t2)}`)

    const [t3, connection] = yield* Effect.timed(
      actions.ensureConnection(user, app, { redirectUri: options.redirectUri }).pipe(
        Effect.tap((c) => Console.log(`[3/5] Connect: reusing connection ${c.id} (${c.title ?? "untitled"})`)),
        Effect.catchTag("ConnectionRequired", (required) =>
          Effect.gen(function* () {
            yield* Console.log(
              `[3/5] Connect: ConnectionRequired (${required.reason}) → Connect link ${maskToken(required.link!.url)}`
            )
            const connected = yield* connectStep.connect(user, required.link!)
            yield* Console.log(
              `      completeConnection verified connection ${connected.id} ("${connected.title ?? ""}") belongs to ${user.userId} and stored it`
            )
            return connected
          })
        )
      )
    )
    yield* Console.log(`      connection ready  ${ms(t3)}`)

    // What the action takes, as a workflow builder would show it (start checks the inputs against it again).
    const [tf, fields] = yield* Effect.timed(
      Effect.flatMap(catalog.resolve(user, app, options.action, options.actionType), (action) =>
        catalog.inputFields(user, action.id, { connection: connection.id, inputs: options.inputs })
      )
    )
    const inputFields = ActionInputs.inputFieldsOf(fields)
    yield* Console.log(`      ${options.action} takes ${inputFields.length} input field(s)  ${ms(tf)}`)
    for (const field of inputFields) yield* Console.log(describeField(field))

    const [t4, handle] = yield* Effect.timed(
      actions.start({
        user,
        app,
        action: options.action,
        actionType: options.actionType,
        inputs: options.inputs,
        connection: connection.id
      })
    )
    yield* Console.log(
      `[4/5] Run: looked up ${options.action} → fresh action id ${handle.actionId}; created run ${handle.runId}  ${ms(t4)}`
    )

    yield* Console.log(`[5/5] Poll: until the run finishes (500 ms, ×1.5, 5 s cap, ±20 % jitter)`)
    const [t5, result] = yield* Effect.timed(actions.await(user, handle.runId))
    yield* Console.log(`      run ${result.runId} succeeded  ${ms(t5)}`)
    yield* Console.log(`\nResult: ${JSON.stringify(result.results)}`)
    return result
  })

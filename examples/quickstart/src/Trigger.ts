/**
 * `pnpm demo -- --trigger <key>`: embedded triggers end to end. The end user's connection (reused or made through
 * Connect UI), the app's triggers, the trigger's input fields and a validated subscription, the inbox ensured by
 * key and awaited until `active`, then the consumer: events arrive (emitted in the fake, or by the real app against
 * Zapier), each is handled and acknowledged, and the requests it took are counted.
 */
import { ActionInputs, type Domain, EmbeddedActions, TriggerInbox, Triggers } from "@effect-zapier/core"
import { Console, Duration, Effect, Fiber, Ref } from "effect"
import { ConnectStep, describeField, maskToken } from "./Quickstart.js"

/** What the trigger walk-through runs. */
export interface TriggerOptions {
  readonly user: Domain.EndUser
  readonly app: Domain.AppId
  readonly trigger: Domain.ActionKey
  readonly inputs: Readonly<Record<string, unknown>>
  readonly inboxKey: Domain.InboxKey
  readonly redirectUri: string
  /** How many events to wait for before stopping. */
  readonly events: number
  /** Makes events happen (the fake's control), or `undefined` to wait for real ones. */
  readonly emit: ((inbox: Domain.InboxId, count: number) => Effect.Effect<unknown, unknown>) | undefined
  /** The longest the demo waits for the events. */
  readonly timeout: Duration.DurationInput
}

const ms = (d: Duration.Duration) => `${Math.round(Duration.toMillis(d))} ms`

/** The walk-through. Returns the handled payloads. */
export const triggerProgram = (options: TriggerOptions) =>
  Effect.gen(function* () {
    const actions = yield* EmbeddedActions.EmbeddedActions
    const triggers = yield* Triggers.Triggers
    const consumer = yield* TriggerInbox.TriggerInbox
    const connectStep = yield* ConnectStep
    const { app, user } = options

    yield* Console.log(`End user ${user.userId} of tenant ${user.tenantId} · app ${app} · trigger ${options.trigger}\n`)

    const connection = yield* actions.ensureConnection(user, app, { redirectUri: options.redirectUri }).pipe(
      Effect.tap((c) => Console.log(`[1/5] Connection: reusing ${c.id}`)),
      Effect.catchTag("ConnectionRequired", (required) =>
        Effect.gen(function* () {
          yield* Console.log(`[1/5] Connection: ${required.reason} → Connect link ${maskToken(required.link!.url)}`)
          return yield* connectStep.connect(user, required.link!)
        })
      )
    )

    const [t2, all] = yield* Effect.timed(triggers.list(user, app))
    yield* Console.log(`[2/5] Triggers of ${app} (its READ actions): ${all.map((t) => t.key).join(", ")}  ${ms(t2)}`)
    const fields = yield* triggers.inputFields(user, app, options.trigger, {
      connection: connection.id,
      inputs: options.inputs
    })
    for (const field of ActionInputs.inputFieldsOf(fields)) yield* Console.log(describeField(field))
    const subscription = yield* triggers.subscription(user, app, options.trigger, {
      connection: connection.id,
      inputs: options.inputs
    })
    yield* Console.log(`      inputs ${JSON.stringify(options.inputs)} are valid for ${options.trigger}`)

    const [t3, inbox] = yield* Effect.timed(consumer.ensure(user, { key: options.inboxKey, subscription }))
    yield* Console.log(
      `[3/5] Inbox "${options.inboxKey}" ensured (idempotent by key) and ${inbox.status}: ${inbox.id}  ${ms(t3)}`
    )

    const handled = yield* Ref.make<ReadonlyArray<unknown>>([])
    const started = performance.now()
    const fiber = yield* Effect.fork(
      consumer.consume(
        user,
        inbox.id,
        (payload, message) =>
          Effect.gen(function* () {
            const n = (yield* Ref.updateAndGet(handled, (all) => [...all, payload])).length
            yield* Console.log(
              `      handled ${message.id} (${((performance.now() - started) / 1000).toFixed(2)} s): ${JSON.stringify(payload)} → acked`
            )
            return n
          }),
        { batch: 10, leaseSeconds: 60 }
      )
    )
    yield* Console.log(`[4/5] Consuming: SSE wake-ups, one lease and one ack per batch, a safety drain every 5 min`)
    if (options.emit !== undefined) {
      yield* Console.log(`      the fake emits ${options.events} event(s) into the inbox`)
      yield* options.emit(inbox.id, options.events)
    } else {
      yield* Console.log(
        `      waiting for ${options.events} event(s) from ${app} (up to ${Duration.format(Duration.decode(options.timeout))})`
      )
    }
    const waited = yield* Effect.timeoutOption(
      Effect.gen(function* () {
        while ((yield* Ref.get(handled)).length < options.events) yield* Effect.sleep("50 millis")
      }),
      options.timeout
    )
    yield* Fiber.interrupt(fiber)
    const payloads = yield* Ref.get(handled)
    yield* Console.log(
      `[5/5] ${payloads.length} event(s) handled and acknowledged${waited._tag === "None" ? " (stopped at the timeout)" : ""}; the consumer stopped and released nothing left`
    )
    return payloads
  })

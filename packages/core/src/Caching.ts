/**
 * What `EmbeddedActions` remembers between runs so a run costs Zapier fewer requests, within Zapier's rules (the
 * fresh action id is still looked up for every run):
 * - a stored connection verified (listed and valid) within `connectionTtl` is used without listing the user's
 *   connections again; it is verified again when the time passes, and at once when a run fails with an
 *   `authentication` error;
 * - the pre-run input check reuses the action's input fields fetched within `fieldsTtl`, per end user, app,
 *   action key and connection (and the values of the fields that change the field set, when the action has any).
 *
 * Every cache is per end user (one user's entries are never used for another) and bounded: at most `maxUsers`
 * users and `maxEntriesPerUser` entries each, the least recently used going first. A zero time to live turns
 * that cache off. The policy is a `Context.Reference`: the bounds are read when `EmbeddedActions.layer` is built,
 * the times to live on every call.
 *
 * @example
 * ```ts
 * import { Caching, Domain, EmbeddedActions } from "@effect-zapier/core"
 * import { Duration, Effect } from "effect"
 *
 * const program = Effect.flatMap(EmbeddedActions.EmbeddedActions, (actions) =>
 *   actions.run({
 *     user: Domain.EndUser.make({ userId: "u-42", tenantId: "acme" }),
 *     app: Domain.AppId.make("slack"),
 *     action: Domain.ActionKey.make("send_channel_message"),
 *     inputs: { channel: "#general", text: "Hello" }
 *   })
 * )
 *
 * // List the user's connections before every run, as without the cache:
 * const listing = program.pipe(
 *   Effect.provideService(Caching.Policy, { ...Caching.defaults, connectionTtl: Duration.zero })
 * )
 * ```
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"

/** @since 0.1.0 */
export interface PolicyShape {
  /** How long a verified connection is used without listing; default 10 minutes (zero: list before every run). */
  readonly connectionTtl: Duration.Duration
  /** How long fetched input fields serve the pre-run check; default 10 minutes (zero: fetch before every run). */
  readonly fieldsTtl: Duration.Duration
  /** End users remembered per cache; default 10,000. */
  readonly maxUsers: number
  /** Entries per end user per cache; default 64. */
  readonly maxEntriesPerUser: number
}

/**
 * The defaults (see the module's description).
 * @since 0.1.0
 */
export const defaults: PolicyShape = {
  connectionTtl: Duration.minutes(10),
  fieldsTtl: Duration.minutes(10),
  maxUsers: 10_000,
  maxEntriesPerUser: 64
}

/**
 * No caching at all: list and fetch the fields before every run.
 * @since 0.1.0
 */
export const off: PolicyShape = { ...defaults, connectionTtl: Duration.zero, fieldsTtl: Duration.zero }

/**
 * The policy in force: a `Context.Reference`, so it has the defaults unless a program provides another.
 * @since 0.1.0
 * @category tags
 */
export class Policy extends Context.Reference<Policy>()("@effect-zapier/core/Caching/Policy", {
  defaultValue: () => defaults
}) {}

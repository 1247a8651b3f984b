/**
 * The seed of the fake: the partner, its users, the apps with their actions and fields, run scripts. Re-exported by
 * `FakeZapier`.
 *
 * @internal
 */
import type { ActionInputs, Domain } from "@effect-zapier/core"
import * as Duration from "effect/Duration"
import type { JWK } from "jose"
import type { FaultRule } from "./fault.js"

// ---------------------------------------------------------------------------------------------------------------
// Run scripts
// ---------------------------------------------------------------------------------------------------------------

/**
 * One error of a scripted failing run, as Zapier reports it in `errors[]` (`delay` is sent in whole seconds).
 * @since 0.1.0
 * @category scripts
 */
export interface RunErrorSeed {
  readonly code: string
  readonly title: string
  readonly detail?: string | undefined
  readonly delay?: Duration.DurationInput | undefined
}

/**
 * The results of a successful run: fixed, or computed from the run's inputs.
 * @since 0.1.0
 * @category scripts
 */
export type ResultsSeed =
  | ReadonlyArray<unknown>
  | ((inputs: Readonly<Record<string, unknown>>) => ReadonlyArray<unknown>)

/**
 * The lifecycle of every run of an action: succeed after a duration with results, fail after a duration with
 * `errors[]`, or stay pending forever. The status is computed from the clock whenever the run is read.
 * @since 0.1.0
 * @category scripts
 */
export type RunScript =
  | { readonly _tag: "Succeed"; readonly after: Duration.Duration; readonly results: ResultsSeed }
  | { readonly _tag: "Fail"; readonly after: Duration.Duration; readonly errors: ReadonlyArray<RunErrorSeed> }
  | { readonly _tag: "Pending" }

/**
 * Constructors of {@link RunScript}s.
 *
 * @example
 * ```ts
 * FakeZapier.RunScript.succeed("2 seconds", (inputs) => [{ ok: true, channel: inputs.channel }])
 * FakeZapier.RunScript.fail("1 second", [{ code: "throttled", title: "Throttled", delay: "30 seconds" }])
 * FakeZapier.RunScript.pending
 * ```
 * @since 0.1.0
 * @category scripts
 */
export const RunScript = {
  succeed: (after: Duration.DurationInput, results: ResultsSeed): RunScript => ({
    _tag: "Succeed",
    after: Duration.decode(after),
    results
  }),
  fail: (after: Duration.DurationInput, errors: ReadonlyArray<RunErrorSeed>): RunScript => ({
    _tag: "Fail",
    after: Duration.decode(after),
    errors
  }),
  pending: { _tag: "Pending" } as RunScript
} as const

// ---------------------------------------------------------------------------------------------------------------
// Seed
// ---------------------------------------------------------------------------------------------------------------

/**
 * A public key the partner registered for its JWTs: an SPKI PEM or a public JWK.
 * @since 0.1.0
 * @category seed
 */
export interface PartnerKeySeed {
  readonly kid: string
  readonly publicKey: string | JWK
  /** Restrict the key to one algorithm (RS256/384/512, ES256/384/512). */
  readonly alg?: string | undefined
}

/**
 * The partner as Zapier registered it at onboarding.
 * @since 0.1.0
 * @category seed
 */
export interface PartnerSeed {
  readonly clientId?: string | undefined
  readonly clientSecret?: string | undefined
  /** The JWT `iss` Zapier expects (default `https://partner.example`). */
  readonly issuer?: string | undefined
  /** The JWT `aud` Zapier expects (default `connect.zapier.com`). */
  readonly audience?: string | undefined
  readonly keys?: ReadonlyArray<PartnerKeySeed> | undefined
  /** The claim holding the user id (default `sub`). */
  readonly userClaim?: string | undefined
  /** The claim holding the tenant id (default `org_id`). */
  readonly tenantClaim?: string | undefined
  /**
   * Registered Connect callback URLs; when set, any other `redirect_uri` is refused. Compared without their query
   * (scheme, host, port and path): the partner's own parameters and the library's `connect_attempt` ride in the
   * query. Whether Zapier compares the query too is not documented (inferred).
   */
  readonly redirectUris?: ReadonlyArray<string> | undefined
}

/**
 * One choice of a `SELECT` field: a bare value, or a value with a label (and an id; default the value).
 * @since 0.1.0
 * @category seed
 */
export type ChoiceSeed =
  | string
  | { readonly value: string; readonly label?: string | undefined; readonly id?: string | undefined }

/**
 * The choices of a field: fixed, or computed from the inputs filled so far (a dropdown that depends on another
 * field). They are served in pages of `Seed.choicesPageSize`.
 * @since 0.1.0
 * @category seed
 */
export type ChoicesSeed =
  | ReadonlyArray<ChoiceSeed>
  | ((inputs: Readonly<Record<string, unknown>>) => ReadonlyArray<ChoiceSeed>)

/**
 * An input field of an action. `valueType` defaults to `STRING`; a field with `choices` is a `SELECT` field
 * unless `format` says otherwise. `when` makes it a dependent field: it is only among the fields while `when`
 * holds for the inputs (pair it with `invalidates: true` on the field it depends on).
 * @since 0.1.0
 * @category seed
 */
export interface InputFieldSeed {
  readonly type?: "input" | undefined
  readonly id: string
  readonly title?: string | undefined
  readonly description?: string | undefined
  readonly required?: boolean | undefined
  readonly default?: string | undefined
  readonly placeholder?: string | undefined
  readonly format?: ActionInputs.InputFormat | undefined
  readonly valueType?: ActionInputs.ValueType | undefined
  readonly list?: boolean | undefined
  readonly dependsOn?: ReadonlyArray<string> | undefined
  readonly invalidates?: boolean | undefined
  readonly choices?: ChoicesSeed | undefined
  readonly when?: ((inputs: Readonly<Record<string, unknown>>) => boolean) | undefined
}

/** A piece of help text among the fields. @since 0.1.0 @category seed */
export interface InfoFieldSeed {
  readonly type: "info"
  readonly id: string
  readonly description: string
}

/** A titled group of fields. @since 0.1.0 @category seed */
export interface FieldsetSeed {
  readonly type: "fieldset"
  readonly id: string
  readonly title: string
  readonly fields: ReadonlyArray<InputFieldSeed | InfoFieldSeed>
}

/** @since 0.1.0 @category seed */
export type FieldSeed = InputFieldSeed | InfoFieldSeed | FieldsetSeed

/**
 * An action's input fields: fixed, or computed from the inputs filled so far (fields that appear when another
 * one changes).
 * @since 0.1.0
 * @category seed
 */
export type FieldsSeed =
  | ReadonlyArray<FieldSeed>
  | ((inputs: Readonly<Record<string, unknown>>) => ReadonlyArray<FieldSeed>)

/** One output field of an action. @since 0.1.0 @category seed */
export interface OutputFieldSeed {
  readonly id: string
  readonly title?: string | undefined
  readonly sample?: unknown
}

/**
 * An action of a seeded app and the lifecycle of its runs (default: success after 1 s with no results), with
 * its input fields (default none) and output fields (default none).
 * @since 0.1.0
 * @category seed
 */
export interface ActionSeed {
  readonly key: string
  readonly actionType: Domain.ActionType
  readonly title: string
  readonly description?: string | undefined
  readonly isInstant?: boolean | undefined
  readonly run?: RunScript | undefined
  readonly inputFields?: FieldsSeed | undefined
  readonly outputFields?:
    | ReadonlyArray<OutputFieldSeed>
    | ((inputs: Readonly<Record<string, unknown>>) => ReadonlyArray<OutputFieldSeed>)
    | undefined
}

/**
 * An app of the catalog. `service` is the key Connect UI reports (for example `SlackAPI`).
 * @since 0.1.0
 * @category seed
 */
export interface AppSeed {
  readonly id: string
  readonly title: string
  readonly service: string
  readonly description?: string | undefined
  /** Category slugs, for `GET /v2/apps?category=`. */
  readonly categories?: ReadonlyArray<string> | undefined
  /** Apps without authentication run with `connection: null` (default `true`). */
  readonly requiresAuth?: boolean | undefined
  readonly actions: ReadonlyArray<ActionSeed>
}

/**
 * A connection to seed (or add). Ids are generated (numeric strings) unless given.
 * @since 0.1.0
 * @category seed
 */
export interface ConnectionSeed {
  readonly app: string
  readonly id?: string | undefined
  readonly title?: string | undefined
  readonly isExpired?: boolean | undefined
}

/**
 * An end user provisioned up front, with connections.
 * @since 0.1.0
 * @category seed
 */
export interface UserSeed {
  readonly user: { readonly userId: string; readonly tenantId: string }
  readonly connections?: ReadonlyArray<ConnectionSeed> | undefined
}

/**
 * Everything a fresh model starts with. Every field is optional.
 * @since 0.1.0
 * @category seed
 */
export interface Seed {
  readonly partner?: PartnerSeed | undefined
  readonly apps?: ReadonlyArray<AppSeed> | undefined
  readonly users?: ReadonlyArray<UserSeed> | undefined
  /** `expires_in` of access tokens (default 3600 s). */
  readonly accessTokenTtl?: Duration.DurationInput | undefined
  /** Lifetime of connect tokens (default 6 minutes). */
  readonly connectTokenTtl?: Duration.DurationInput | undefined
  /** The scope granted with access tokens when none is requested. */
  readonly scope?: string | undefined
  /** Base URL of Connect UI in links (default `https://connect.zapier.com`; the server uses its own URL). */
  readonly connectUrl?: string | undefined
  /** Choices per page of `…/inputs/{field}/choices` (default 10). */
  readonly choicesPageSize?: number | undefined
  /** Requests per minute to `/v2` before a 429 and a 60 s cooldown (default: no limit). */
  readonly rateLimitPerMinute?: number | undefined
  /**
   * The window `rateLimitPerMinute` counts over, and the cooldown after a 429 (default 60 s, Zapier's); shorter
   * windows scale a real-time test down (`rateLimitPerMinute` is then "per window").
   */
  readonly rateLimitWindow?: Duration.DurationInput | undefined
  /**
   * Long-poll reads (`GET /actions/v2/runs/{id}`) per window before a 429 and a cooldown: Zapier meters them in
   * their own bucket (`actions_api_results`), counted apart from the `/v2` requests (default: `rateLimitPerMinute`,
   * in a window of its own).
   */
  readonly resultsRateLimitPerMinute?: number | undefined
  readonly faults?: ReadonlyArray<FaultRule> | undefined
  /** Run callbacks (see {@link CallbackSeed}). */
  readonly callbacks?: CallbackSeed | undefined
  /** How long the model keeps finished runs and issued action ids (see {@link RetentionSeed}). */
  readonly retention?: RetentionSeed | undefined
}

/**
 * What the model keeps of the runs and action ids that pile up, so a fake that runs long (a soak, a benchmark, a
 * partner's test server) stays bounded. A finished run is kept `runTtl` after it ended (default 7 days, Zapier's
 * documented retention of run data), and of the finished runs at most `maxRuns` (default 10,000; the oldest
 * created go first): a dropped run reads as unknown (404, as Zapier answers for a run past its retention) and is
 * gone from `FakeZapier.runs`. A pending run is always kept. Of the action ids the lookups issue, the newest
 * `maxActionIds` (default 10,000) are kept: an older one is unknown to a create or a fields request, as an id that
 * was never issued. The ledger is not bounded (it is what tests count): `resetLedger` empties it.
 * @since 0.3.0
 * @category seed
 */
export interface RetentionSeed {
  readonly runTtl?: Duration.DurationInput | undefined
  readonly maxRuns?: number | undefined
  readonly maxActionIds?: number | undefined
}

/**
 * What happens to one callback delivery: sent (`deliver`), never sent (`drop`), or sent twice (`duplicate`).
 * @since 0.1.0
 * @category seed
 */
export type CallbackPlan = "deliver" | "drop" | "duplicate"

/**
 * How the fake posts run callbacks.
 * @since 0.1.0
 * @category seed
 */
export interface CallbackSeed {
  /**
   * Accept a loopback `callback_url` (`http:` or `https:` on 127.0.0.1, localhost, ::1) for a partner server in the
   * same test. Zapier refuses them (default false: refused with 400, as Zapier does).
   */
  readonly allowLoopback?: boolean | undefined
  /**
   * The signature's claims: `minimal` (default: `iss`, `iat`, `exp`, `jti`, what Zapier documents) or `bound`
   * (also `run_id` and `body_sha256`, which Zapier does not document).
   */
  readonly claims?: "minimal" | "bound" | undefined
  /** Attempts per delivery on a 5xx or a network error, the first included (default 3, as Zapier). */
  readonly attempts?: number | undefined
  /** The wait before the first retry, doubled for each later one (default 200 ms). */
  readonly retryDelay?: Duration.DurationInput | undefined
  /** The longest one POST may take (default 5 s). */
  readonly timeout?: Duration.DurationInput | undefined
}

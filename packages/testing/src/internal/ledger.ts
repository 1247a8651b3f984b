/**
 * The ledger: every request, token, lookup, run, read and Connect UI session, in order, so tests can count
 * requests. Re-exported by `FakeZapier`.
 *
 * @internal
 */
import type { Domain } from "@effect-zapier/core"

/**
 * Zapier's word for a run's state on the wire.
 * @since 0.1.0
 */
export type RunStatus = "waiting" | "success" | "error"

// ---------------------------------------------------------------------------------------------------------------
// Ledger
// ---------------------------------------------------------------------------------------------------------------

/** One request (HTTP, or a logical one for the in-memory layer). `at` is epoch millis on the model's clock. @since 0.1.0 @category ledger */
export interface RequestEntry {
  readonly at: number
  readonly method: string
  readonly endpoint: string
  readonly path: string
  readonly status: number
  readonly user?: Domain.EndUser | undefined
}
/** One token issued by the token endpoint. @since 0.1.0 @category ledger */
export interface ExchangeEntry {
  readonly at: number
  readonly user: Domain.EndUser
  readonly kind: "access" | "connect"
  readonly app?: Domain.AppId | undefined
  readonly expiresIn: number
}
/** One action lookup (`GET /v2/actions`) and the fresh ids it issued. @since 0.1.0 @category ledger */
export interface LookupEntry {
  readonly at: number
  readonly user: Domain.EndUser
  readonly app: Domain.AppId
  readonly actionType?: Domain.ActionType | undefined
  readonly ids: ReadonlyArray<Domain.ActionId>
}
/** One run created. @since 0.1.0 @category ledger */
export interface RunEntry {
  readonly at: number
  readonly user: Domain.EndUser
  readonly runId: Domain.ActionRunId
  readonly app: Domain.AppId
  readonly action: Domain.ActionKey
  readonly actionId: Domain.ActionId
  readonly connection: Domain.ConnectionId | null
  readonly inputs: Readonly<Record<string, unknown>>
}
/** One read of a run, with the status it returned. @since 0.1.0 @category ledger */
export interface PollEntry {
  readonly at: number
  readonly user: Domain.EndUser
  readonly runId: Domain.ActionRunId
  readonly status: RunStatus
}
/** One Connect UI session that finished (or was refused). @since 0.1.0 @category ledger */
export interface ConnectEntry {
  readonly at: number
  readonly user?: Domain.EndUser | undefined
  readonly app: string
  readonly outcome: "approved" | "denied" | "refused"
  readonly connection?: Domain.ConnectionId | undefined
  readonly reconnect?: boolean | undefined
  readonly error?: string | undefined
  readonly description?: string | undefined
}

/**
 * One attempt to deliver a run callback (Zapier → the partner's callback URL): `delivery` is 1, or 2 for a planned
 * duplicate; `attempt` counts retries within a delivery (0 for a dropped one); `status` is the partner's HTTP
 * status, `network` for no answer (refused, reset, timed out), or `dropped` when the plan dropped it.
 * @since 0.1.0
 * @category ledger
 */
export interface CallbackEntry {
  readonly at: number
  readonly runId: Domain.ActionRunId
  readonly delivery: number
  readonly attempt: number
  readonly status: number | "network" | "dropped"
}

/**
 * Everything that happened, in order.
 * @since 0.1.0
 * @category ledger
 */
export interface Ledger {
  readonly requests: ReadonlyArray<RequestEntry>
  readonly exchanges: ReadonlyArray<ExchangeEntry>
  readonly lookups: ReadonlyArray<LookupEntry>
  readonly runs: ReadonlyArray<RunEntry>
  readonly polls: ReadonlyArray<PollEntry>
  readonly connects: ReadonlyArray<ConnectEntry>
  readonly callbacks: ReadonlyArray<CallbackEntry>
}

const sameUser = (a: Domain.EndUser | undefined, b: Domain.EndUser): boolean =>
  a !== undefined && a.userId === b.userId && a.tenantId === b.tenantId

/**
 * Requests per endpoint, e.g. `{ "GET /v2/action-runs/{id}/": 3, ... }`.
 * @since 0.1.0
 * @category ledger
 */
export const requestsByEndpoint = (ledger: Ledger): Record<string, number> => {
  const counts: Record<string, number> = {}
  for (const r of ledger.requests) counts[r.endpoint] = (counts[r.endpoint] ?? 0) + 1
  return counts
}

/**
 * The tokens issued to one user (optionally of one kind).
 * @since 0.1.0
 * @category ledger
 */
export const exchangesOf = (
  ledger: Ledger,
  user: Domain.EndUser,
  kind?: "access" | "connect"
): ReadonlyArray<ExchangeEntry> =>
  ledger.exchanges.filter((e) => sameUser(e.user, user) && (kind === undefined || e.kind === kind))

/**
 * The reads of one run.
 * @since 0.1.0
 * @category ledger
 */
export const pollsOf = (ledger: Ledger, runId: Domain.ActionRunId): ReadonlyArray<PollEntry> =>
  ledger.polls.filter((p) => p.runId === runId)

/**
 * The callback delivery attempts of one run.
 * @since 0.1.0
 * @category ledger
 */
export const callbacksOf = (ledger: Ledger, runId: Domain.ActionRunId): ReadonlyArray<CallbackEntry> =>
  ledger.callbacks.filter((c) => c.runId === runId)

/**
 * The runs one user created.
 * @since 0.1.0
 * @category ledger
 */
export const runsOf = (ledger: Ledger, user: Domain.EndUser): ReadonlyArray<RunEntry> =>
  ledger.runs.filter((r) => sameUser(r.user, user))

/**
 * Creates counted per idempotency key, to prove exactly-once. Zapier's create carries no idempotency key on the
 * wire, so the key is read from what the caller sent with `keyOf` (e.g. an input holding the caller's job id);
 * runs for which it gives `undefined` are not counted.
 * @since 0.1.0
 * @category ledger
 */
export const createsPerKey = (
  ledger: Ledger,
  keyOf: (run: RunEntry) => string | undefined
): ReadonlyMap<string, number> => {
  const counts = new Map<string, number>()
  for (const run of ledger.runs) {
    const key = keyOf(run)
    if (key !== undefined) counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return counts
}

/**
 * The action lookups one user made.
 * @since 0.1.0
 * @category ledger
 */
export const lookupsOf = (ledger: Ledger, user: Domain.EndUser): ReadonlyArray<LookupEntry> =>
  ledger.lookups.filter((l) => sameUser(l.user, user))

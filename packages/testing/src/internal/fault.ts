/**
 * The fault plan: what an injected fault does and which requests it hits. Re-exported by `FakeZapier`.
 *
 * @internal
 */
import type { Domain } from "@effect-zapier/core"
import type * as Duration from "effect/Duration"

// ---------------------------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------------------------

/**
 * A fault injected into one request.
 * - `Status`: answer with this HTTP status and a Zapier error (`errors[]`; OAuth `{error}` on the token endpoint),
 *   with `Retry-After` when `retryAfter` is set (in delta seconds, or as an HTTP-date with
 *   `retryAfterFormat: "http-date"`). With `afterCommit` the request is processed first (a run is created) and
 *   only the answer is replaced: the ambiguous case.
 * - `Delay`: answer normally, after `duration` (on the model's clock).
 * - `Disconnect`: the connection is dropped without an answer (after processing when `afterCommit`).
 * - `MalformedBody`: the request is processed, then answered `200` with a body that is not JSON.
 * - `Respond`: the answer is replaced by exactly this status, content type, headers and body (an HTML page, an
 *   empty 200, a run with a status Zapier never documented, …); processed first unless `afterCommit: false`.
 *   Over HTTP the bytes are sent as given; the in-memory layer, which has no wire, maps it by status (a 2xx
 *   counts as a body that does not decode).
 * @since 0.1.0
 * @category faults
 */
export type Fault =
  | {
      readonly _tag: "Status"
      readonly status: number
      readonly code?: string | undefined
      readonly detail?: string | undefined
      readonly retryAfter?: Duration.DurationInput | undefined
      readonly retryAfterFormat?: "seconds" | "http-date" | undefined
      readonly afterCommit?: boolean | undefined
    }
  | { readonly _tag: "Delay"; readonly duration: Duration.DurationInput }
  | { readonly _tag: "Disconnect"; readonly afterCommit?: boolean | undefined }
  | { readonly _tag: "MalformedBody" }
  | {
      readonly _tag: "Respond"
      readonly status: number
      readonly body: string
      readonly contentType?: string | undefined
      readonly headers?: Readonly<Record<string, string>> | undefined
      readonly afterCommit?: boolean | undefined
    }

/**
 * Constructors of {@link Fault}s.
 *
 * @example
 * ```ts
 * FakeZapier.Fault.status(429, { retryAfter: "30 seconds", retryAfterFormat: "http-date" })
 * FakeZapier.Fault.respond("<html><body>Bad gateway</body></html>", { status: 200, contentType: "text/html" })
 * FakeZapier.Fault.respond("", { status: 200 }) // an empty 200
 * ```
 * @since 0.1.0
 * @category faults
 */
export const Fault = {
  status: (
    status: number,
    options?: {
      readonly code?: string | undefined
      readonly detail?: string | undefined
      readonly retryAfter?: Duration.DurationInput | undefined
      readonly retryAfterFormat?: "seconds" | "http-date" | undefined
      readonly afterCommit?: boolean | undefined
    }
  ): Fault => ({ _tag: "Status", status, ...options }),
  delay: (duration: Duration.DurationInput): Fault => ({ _tag: "Delay", duration }),
  disconnect: (options?: { readonly afterCommit?: boolean | undefined }): Fault => ({ _tag: "Disconnect", ...options }),
  malformedBody: { _tag: "MalformedBody" } as Fault,
  respond: (
    body: string,
    options?: {
      readonly status?: number | undefined
      readonly contentType?: string | undefined
      readonly headers?: Readonly<Record<string, string>> | undefined
      readonly afterCommit?: boolean | undefined
    }
  ): Fault => ({
    _tag: "Respond",
    body,
    status: options?.status ?? 200,
    contentType: options?.contentType ?? "application/json",
    ...(options?.headers !== undefined ? { headers: options.headers } : {}),
    ...(options?.afterCommit !== undefined ? { afterCommit: options.afterCommit } : {})
  })
} as const

/**
 * When a fault fires: on requests to `endpoint` (one of {@link Endpoint}; any when omitted) of `user` (any when
 * omitted), after skipping the first `skip` matching requests, for `times` requests (default 1; `Infinity` for all).
 *
 * @example
 * ```ts
 * // The 2nd create-run request is processed but its answer is a 500:
 * zapier.injectFault({ endpoint: FakeZapier.Endpoint.createRun, skip: 1, fault: FakeZapier.Fault.status(500, { afterCommit: true }) })
 * ```
 * @since 0.1.0
 * @category faults
 */
export interface FaultRule {
  readonly endpoint?: string | undefined
  readonly user?: Domain.EndUser | undefined
  readonly skip?: number | undefined
  readonly times?: number | undefined
  readonly fault: Fault
}

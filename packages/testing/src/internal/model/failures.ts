/**
 * How the fake fails: Zapier API errors, token-endpoint errors, Connect UI outcomes, and what the fault gate
 * decided for a request.
 *
 * @internal
 */
import type { Domain } from "@effect-zapier/core"
import * as Duration from "effect/Duration"
import type { ConnectionRecord } from "./state.js"

/** A Zapier API error (`errors[]` item) with its HTTP status. */
export interface ApiFailure {
  readonly status: number
  readonly code: string
  readonly title: string
  readonly detail: string
  readonly retryAfterSeconds?: number | undefined
  /** How `Retry-After` is written (default: delta seconds). */
  readonly retryAfterFormat?: "seconds" | "http-date" | undefined
  readonly parameter?: string | undefined
  readonly resource?: string | undefined
}

export const statusTitles: Record<number, readonly [string, string, string]> = {
  400: ["invalid", "ValidationError", "Invalid input."],
  401: ["authentication_failed", "AuthenticationFailed", "Incorrect authentication credentials."],
  403: ["permission_denied", "PermissionDenied", "You do not have permission to perform this action."],
  404: ["not_found", "NotFound", "Not found."],
  408: ["request_timeout", "RequestTimeout", "Request timeout."],
  409: ["conflict", "Conflict", "Conflict."],
  429: ["throttled", "Throttled", "Request was throttled."],
  500: ["error", "APIException", "A server error occurred."],
  502: ["bad_gateway", "BadGateway", "Bad gateway."],
  503: ["service_unavailable", "ServiceUnavailable", "Service temporarily unavailable, try again later."],
  504: ["gateway_timeout", "GatewayTimeout", "Gateway timeout."]
}

export const ApiFailure = {
  invalid: (detail: string, parameter?: string): ApiFailure => ({
    status: 400,
    code: "invalid",
    title: "ValidationError",
    detail,
    parameter
  }),
  parseError: (detail = "Malformed request."): ApiFailure => ({
    status: 400,
    code: "parse_error",
    title: "ParseError",
    detail
  }),
  notAuthenticated: (): ApiFailure => ({
    status: 401,
    code: "not_authenticated",
    title: "NotAuthenticated",
    detail: "Authentication credentials were not provided."
  }),
  authenticationFailed: (detail: string): ApiFailure => ({
    status: 401,
    code: "authentication_failed",
    title: "AuthenticationFailed",
    detail
  }),
  notFound: (resource: string, detail = "Not found."): ApiFailure => ({
    status: 404,
    code: "not_found",
    title: "NotFound",
    detail,
    resource
  }),
  throttled: (seconds: number): ApiFailure => ({
    status: 429,
    code: "throttled",
    title: "Throttled",
    detail: `Request was throttled. Expected available in ${seconds} seconds.`,
    retryAfterSeconds: seconds
  }),
  fromStatus: (
    status: number,
    code?: string,
    detail?: string,
    retryAfter?: Duration.DurationInput,
    retryAfterFormat?: "seconds" | "http-date"
  ): ApiFailure => {
    const [defaultCode, title, defaultDetail] = statusTitles[status] ?? ["error", "APIException", `HTTP ${status}`]
    return {
      status,
      code: code ?? defaultCode,
      title,
      detail: detail ?? defaultDetail,
      retryAfterSeconds:
        retryAfter !== undefined ? Math.ceil(Duration.toMillis(Duration.decode(retryAfter)) / 1000) : undefined,
      ...(retryAfterFormat !== undefined ? { retryAfterFormat } : {})
    }
  }
}

/** An RFC 6749 token-endpoint error. */
export interface OAuthFailure {
  readonly status: number
  readonly error: string
  readonly description: string
  readonly retryAfterSeconds?: number | undefined
  readonly retryAfterFormat?: "seconds" | "http-date" | undefined
}

export const oauth = (status: number, error: string, description: string): OAuthFailure => ({
  status,
  error,
  description
})

/** A token-endpoint error for an injected status fault. */
export const oauthFromApi = (failure: ApiFailure, code?: string): OAuthFailure => {
  const error =
    code ??
    (failure.status === 401
      ? "invalid_client"
      : failure.status === 400
        ? "invalid_grant"
        : failure.status === 429
          ? "slow_down"
          : failure.status === 503
            ? "temporarily_unavailable"
            : "server_error")
  return {
    status: failure.status,
    error,
    description: failure.detail,
    retryAfterSeconds: failure.retryAfterSeconds,
    ...(failure.retryAfterFormat !== undefined ? { retryAfterFormat: failure.retryAfterFormat } : {})
  }
}

/** Connect UI refused the session: Zapier's documented Connect UI error (redirected when `redirectUri` is set). */
export interface ConnectRefusal {
  readonly _tag: "Refused"
  readonly error: string
  readonly description: string
  readonly state: string | undefined
  readonly redirectUri: string | undefined
}

export type ConnectOutcome =
  | {
      readonly _tag: "Approved"
      readonly connection: ConnectionRecord
      readonly service: string
      readonly state: string | undefined
      readonly redirectUri: string | undefined
    }
  | {
      readonly _tag: "Denied"
      readonly error: string
      readonly description: string
      readonly state: string | undefined
      readonly redirectUri: string | undefined
    }
  | ConnectRefusal

/** The redirect query Connect UI sends for an outcome. */

export interface RequestInfo {
  readonly method: string
  readonly endpoint: string
  readonly path: string
  readonly user?: Domain.EndUser | undefined
}

/** An answer given byte for byte (the `Respond` fault). */
export interface RawAnswer {
  readonly status: number
  readonly body: string
  readonly contentType: string
  readonly headers: Readonly<Record<string, string>>
}

/** What to do after processing a request that was let through. */
export type AfterFault =
  | { readonly _tag: "Fail"; readonly failure: ApiFailure; readonly code: string | undefined }
  | { readonly _tag: "Drop" }
  | { readonly _tag: "Malformed" }
  | { readonly _tag: "Raw"; readonly answer: RawAnswer }

export type Gate =
  | { readonly _tag: "Proceed"; readonly delay: Duration.Duration | undefined; readonly after: AfterFault | undefined }
  | { readonly _tag: "Fail"; readonly failure: ApiFailure; readonly code: string | undefined }
  | { readonly _tag: "Drop" }
  | { readonly _tag: "Raw"; readonly answer: RawAnswer }

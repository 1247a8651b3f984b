/**
 * The app's request guard and response headers, as one `HttpApiBuilder.serve` middleware. **The pattern to copy**
 * into your own backend:
 *
 * - **CSRF.** Every state-changing request (anything but `GET`, `HEAD`, `OPTIONS`) must come from this origin: a
 *   `Sec-Fetch-Site` other than `same-origin` (or `none`, typed by the user) and an `Origin` whose host is not this
 *   host are refused with 403. A request body must be `application/json` (415 otherwise): a cross-site HTML form can
 *   send `application/x-www-form-urlencoded`, `multipart/form-data` or `text/plain` without a preflight, never JSON.
 *   Together with the `SameSite=Lax` session cookie, this is what stops login CSRF and forged state changes.
 * - **Request size.** A body over `maxBodyBytes` (declared by `Content-Length`) is refused with 413 before it is
 *   read; a body without a length is cut at the same size while it is read.
 * - **Headers.** `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` and a strict `Content-Security-Policy`
 *   (own origin only, no framing) on every answer.
 * - **Traces.** The Connect callback's query (`state`, `connect_attempt`, `authentication_id`) is not recorded: the
 *   platform's server span is turned off for that route (`HttpMiddleware.withTracerDisabledWhen` on the server
 *   layer, with {@link isCallback}) and replaced by one that records the path only.
 */

import { HttpApp, HttpIncomingMessage, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Option } from "effect"

export interface Options {
  /** The largest request body accepted, in bytes. */
  readonly maxBodyBytes: number
}

/** The default: 64 KiB, far above any input form, far below what would cost Zapier's budget or the app's memory. */
export const defaultMaxBodyBytes = 64 * 1024

/** The routes whose query carries the Connect callback's values. */
export const callbackPath = "/zapier/callback"

const safeMethods = new Set(["GET", "HEAD", "OPTIONS"])

const contentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  // the page's one <style> block
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "object-src 'none'"
].join("; ")

const refuse = (status: number, message: string) =>
  HttpServerResponse.unsafeJson({ _tag: "RequestRefused", message }, { status })

const pathOf = (url: string) => url.split("?")[0] ?? url

/** Whether a request URL is the Connect callback's (its query must not reach a span). */
export const isCallback = (url: string): boolean => pathOf(url) === callbackPath

/** Why this request may not change state here, if it may not. */
const crossSite = (request: HttpServerRequest.HttpServerRequest): string | undefined => {
  const site = request.headers["sec-fetch-site"]
  if (site !== undefined && site !== "same-origin" && site !== "none") {
    return "This request came from another site; state changes are accepted from this app's own pages only."
  }
  const origin = request.headers.origin
  if (origin !== undefined) {
    let host: string | undefined
    try {
      host = new URL(origin).host
    } catch {
      host = undefined
    }
    if (host === undefined || host !== request.headers.host) {
      return "This request's Origin is not this app; state changes are accepted from this app's own pages only."
    }
  }
  return undefined
}

const hasBody = (request: HttpServerRequest.HttpServerRequest) =>
  (request.headers["content-length"] !== undefined && request.headers["content-length"] !== "0") ||
  request.headers["transfer-encoding"] !== undefined

const isJson = (request: HttpServerRequest.HttpServerRequest) =>
  (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase() === "application/json"

/** The security headers of every answer (the page's HTML and script too). */
export const secured = (response: HttpServerResponse.HttpServerResponse) =>
  HttpServerResponse.setHeaders(response, {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": contentSecurityPolicy
  })

/** The middleware (see the module's description). */
export const middleware =
  (options: Options) =>
  <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R | HttpServerRequest.HttpServerRequest> =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const declared = Number(request.headers["content-length"] ?? "0")
      if (!Number.isFinite(declared) || declared > options.maxBodyBytes) {
        return secured(refuse(413, `The request body is larger than ${options.maxBodyBytes} bytes.`))
      }
      if (!safeMethods.has(request.method)) {
        const problem = crossSite(request)
        if (problem !== undefined) return secured(refuse(403, problem))
        if (hasBody(request) && !isJson(request)) {
          return secured(refuse(415, "Send the request body as application/json."))
        }
      }
      // Every answer gets the headers, also those the API builds from a failure after this point.
      yield* HttpApp.appendPreResponseHandler((_, response) => Effect.succeed(secured(response)))
      const limited = HttpIncomingMessage.withMaxBodySize(app, Option.some(options.maxBodyBytes))
      const path = pathOf(request.url)
      if (path !== callbackPath) return yield* limited
      // The callback: the platform's span is off for it (see PartnerApp.layer); this one records the path only.
      const response = yield* limited.pipe(
        Effect.withSpan(`http.server ${request.method}`, {
          kind: "server",
          attributes: { "http.request.method": request.method, "url.path": path }
        })
      )
      return response
    })

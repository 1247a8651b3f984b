/**
 * `@effect/platform`'s server tracing records the request's URL and headers on the request's span before any
 * handler runs (only `Headers.currentRedactedNames`, by default the authorization and cookie headers, are hidden).
 * A handler that receives a secret in a header or in its URL overwrites those attributes with redacted values on
 * entry, so a tracer never exports them, whatever the partner configured.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Tracer from "effect/Tracer"

export interface Secrets {
  /** Request headers (lower case) whose values are secret. */
  readonly headers: ReadonlyArray<string>
  /** A query parameter whose value is secret. */
  readonly queryParameter?: string | undefined
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** The URL (or query) with the parameter's value replaced by `<redacted>`. */
export const redactQuery = (value: string, parameter: string): string =>
  value.replace(new RegExp(`(^|[?&])(${escapeRegExp(encodeURIComponent(parameter))}=)[^&#]*`, "g"), "$1$2<redacted>")

/**
 * Overwrites the URL and header attributes that carry the given secrets on the current span and every span above it
 * (the handler may run inside spans of its own or of a router under the server's span). No span: nothing.
 */
export const scrubServerSpan = (secrets: Secrets): Effect.Effect<void> =>
  Effect.flatMap(Effect.option(Effect.currentSpan), (current) =>
    Effect.sync(() => {
      let next: Option.Option<Tracer.AnySpan> = current
      while (Option.isSome(next) && next.value._tag === "Span") {
        scrub(next.value, secrets)
        next = next.value.parent
      }
    })
  )

const scrub = (span: Tracer.Span, secrets: Secrets) => {
  const parameter = secrets.queryParameter
  if (parameter !== undefined) {
    for (const key of ["url.full", "url.query", "http.url", "http.target"]) {
      const value = span.attributes.get(key)
      if (typeof value === "string") span.attribute(key, redactQuery(value, parameter))
    }
  }
  for (const name of secrets.headers) {
    const key = `http.request.header.${name}`
    if (span.attributes.has(key)) span.attribute(key, "<redacted>")
  }
}

/**
 * `Effect.annotateCurrentSpan` in one step of the run loop (it takes five or so: the context, the propagated
 * span, a sync, and an `ignore` around them), for the attributes every call of a hot method sets.
 * @internal
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"

/** The span `Effect.annotateCurrentSpan` annotates: the innermost one that does not disable propagation. */
const propagated = (span: Tracer.AnySpan | undefined): Tracer.Span | undefined => {
  let current = span
  while (current !== undefined) {
    if (!Context.get(current.context, Tracer.DisablePropagation)) return current._tag === "Span" ? current : undefined
    if (current._tag !== "Span") return undefined
    current = Option.getOrUndefined(current.parent)
  }
  return undefined
}

/**
 * Sets `key` to `value` on the current span of `fiber`, as `Effect.annotateCurrentSpan` does (nothing without a
 * span), for code already running with its fiber (`Effect.withFiberRuntime`).
 * @internal
 */
export const unsafeAnnotate = (fiber: Fiber.RuntimeFiber<unknown, unknown>, key: string, value: unknown): void => {
  propagated(Option.getOrUndefined(Context.getOption(fiber.currentContext, Tracer.ParentSpan)))?.attribute(key, value)
}

/**
 * Sets `key` to `value` on the current span, as `Effect.annotateCurrentSpan` does (nothing without a span), then
 * goes on with `next`.
 * @internal
 */
export const annotateThen = <A, E, R>(
  key: string,
  value: unknown,
  next: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.withFiberRuntime<A, E, R>((fiber) => {
    unsafeAnnotate(fiber, key, value)
    return next
  })

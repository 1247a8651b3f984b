import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"
import type * as Schedule from "effect/Schedule"

/** The tags (or, once read back from the journal, the names) of the engine's store failures. */
const storeFailureNames: ReadonlySet<string> = new Set(["PersistenceError", "SqlError", "MalformedMessage"])

/**
 * A defect that is really the store failing: the engine dies on its persistence errors (`PersistenceError`
 * wrapping the driver's `SqlError`, or a message it could not read back). Seen live (a tagged error) or read back
 * from the journal, where the engine keeps a defect as a plain `Error` with only its name and message.
 */
export const isStoreDefect = (defect: unknown): boolean =>
  (Predicate.hasProperty(defect, "_tag") && storeFailureNames.has(String(defect._tag))) ||
  (defect instanceof Error && storeFailureNames.has(defect.name))

/** What the store failure said, for a typed error (the tag or name and the message; never the cause's details). */
export const describeStoreDefect = (defect: unknown): string => {
  const name = Predicate.hasProperty(defect, "_tag")
    ? String(defect._tag)
    : defect instanceof Error
      ? defect.name
      : "store failure"
  // the first line, bounded: the driver's message, not the stack or a dump of the cause
  const message = (Predicate.hasProperty(defect, "message") ? String(defect.message) : "").split("\n")[0]!.slice(0, 300)
  return message.length > 0 ? `${name}: ${message}` : name
}

class StoreDefect {
  constructor(readonly defect: unknown) {}
}

/**
 * Runs `self` again, on `schedule`, while it dies of the store failing (the engine turns its persistence errors
 * into defects). Used around a whole workflow execution: running it again is a replay (done steps answer from the
 * journal; the create is guarded by its claim), so the execution rides out an outage instead of dying of it.
 */
export const retryStoreDefects =
  <Out>(schedule: Schedule.Schedule<Out, unknown>, onRetry: (description: string) => Effect.Effect<void>) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    self.pipe(
      Effect.catchAllDefect((defect) =>
        isStoreDefect(defect)
          ? Effect.zipRight(onRetry(describeStoreDefect(defect)), Effect.fail(new StoreDefect(defect)))
          : Effect.die(defect)
      ),
      Effect.retry({ schedule, while: (e) => e instanceof StoreDefect }),
      Effect.catchIf(
        (e): e is StoreDefect => e instanceof StoreDefect,
        (e) => Effect.die(e.defect)
      )
    )

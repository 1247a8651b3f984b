/**
 * `EmbeddedActions.completeConnection`: a Connect UI callback (the redirect's query or the popup message) checked
 * against the attempt it must prove it answers, the connection id verified among the user's valid connections,
 * then the attempt closed and the connection stored.
 * @internal
 */
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type { AttemptRecord, ConnectionStore } from "../ConnectionStore.js"
import type { Connections } from "../Connections.js"
import type { AppId, Connection, ConnectionId, EndUser } from "../Domain.js"
import { ConnectCallback } from "../Domain.js"
import type { ConnectFailureReason, RequestError, StoreUnavailable } from "../Errors.js"
import { ConnectFailed } from "../Errors.js"
import * as Polling from "../Polling.js"

const sameUser = (a: EndUser, b: EndUser) => a.userId === b.userId && a.tenantId === b.tenantId

const refuse = (app: AppId, reason: ConnectFailureReason, extra?: { error?: string; description?: string }) =>
  new ConnectFailed({ app, reason, ...extra })

/**
 * The user's valid connection with this id, re-listed over the policy's `connectionGrace` while Zapier does not
 * list it (or still lists it expired): its list may lag Connect UI's redirect. `Left` with the last sighting.
 */
const verifyConnection = (connections: Connections["Type"], user: EndUser, app: AppId, id: ConnectionId) =>
  Effect.gen(function* () {
    const policy = yield* Polling.Policy
    const driver = yield* Schedule.driver(Polling.schedule(policy).pipe(Schedule.upTo(policy.connectionGrace)))
    while (true) {
      const listed = yield* connections.list(user, app)
      const found = listed.find((c) => c.id === id && c.app === app)
      if (found !== undefined && !found.isExpired) return Either.right(found)
      const more = yield* Effect.option(driver.next(undefined))
      if (Option.isNone(more)) return Either.left(found)
    }
  })

/**
 * Completes a connection from Connect UI's callback (see `EmbeddedActions.Service.completeConnection`).
 * @internal
 */
export const completeConnection = (
  deps: { readonly connections: Connections["Type"]; readonly store: ConnectionStore["Type"] },
  user: EndUser,
  app: AppId,
  callback: unknown
): Effect.Effect<Connection, RequestError | ConnectFailed | StoreUnavailable> =>
  Effect.gen(function* () {
    yield* Effect.annotateCurrentSpan({ "zapier.app": app })
    const outcome = yield* Schema.decodeUnknown(ConnectCallback)(callback).pipe(
      Effect.mapError(() => refuse(app, "malformed"))
    )
    // Which attempt this callback answers. It must prove it: by its `state` (echoed by Zapier, or added by the
    // partner's page to a popup message) or by the attempt parameter the library put into the redirect_uri.
    // Nothing is changed before that proof and the connection id are both checked.
    if (outcome.state !== undefined && outcome.attempt !== undefined && outcome.state !== outcome.attempt) {
      return yield* refuse(app, "state_mismatch")
    }
    const binding = outcome.state ?? outcome.attempt
    let record: AttemptRecord
    if (binding !== undefined) {
      const found = yield* deps.store.findAttempt(binding)
      if (Option.isNone(found)) return yield* refuse(app, "state_mismatch")
      record = found.value
      if (!sameUser(record.attempt.user, user)) return yield* refuse(app, "other_user")
      if (record.attempt.app !== app) return yield* refuse(app, "other_app")
    } else if (outcome._tag === "Approved" && outcome.via === "popup") {
      // A popup message reached the backend through the partner's own page (which checked Connect UI's origin and
      // window) and carries no state: it may answer the user's newest attempt, once its connection id is verified.
      const found = yield* deps.store.latestAttempt(user, app)
      if (Option.isNone(found)) return yield* refuse(app, "no_attempt")
      record = found.value
    } else {
      // A redirect (anybody can link a browser to it) or an error without proof: refused, no attempt touched.
      return yield* refuse(app, "unbound")
    }
    if (record.closed) return yield* refuse(app, "replay")
    if (DateTime.lessThan(record.attempt.expiresAt, yield* DateTime.now)) return yield* refuse(app, "attempt_expired")
    if (outcome._tag === "Denied") {
      // A proven error: the link's single-use token is spent, so the attempt is over.
      if (!(yield* deps.store.closeAttempt(record.attempt.state))) return yield* refuse(app, "replay")
      return yield* refuse(app, "denied", {
        error: outcome.error,
        ...(outcome.description !== undefined ? { description: outcome.description } : {})
      })
    }
    const verified = yield* verifyConnection(deps.connections, user, app, outcome.connectionId)
    if (Either.isLeft(verified)) {
      return yield* verified.left === undefined
        ? new ConnectFailed({ app, reason: "connection_not_found", connection: outcome.connectionId })
        : new ConnectFailed({ app, reason: "connection_expired", connection: verified.left.id })
    }
    // Closed only now, atomically: of two callbacks racing on one attempt, only one stores its connection.
    if (!(yield* deps.store.closeAttempt(record.attempt.state))) return yield* refuse(app, "replay")
    // Just (re)authorized through Connect UI: an expiry mark on it is cleared.
    yield* deps.store.set(user, app, verified.right.id, { renewed: true })
    return verified.right
  })

/**
 * Expiring connections: a stored connection Zapier announced the expiry of (`ConnectionStore.markExpiring`) is
 * usable until then, and surfaced as such (`Connection.expiring`); from then on it counts as expired.
 * @internal
 */
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { ConnectLink, StoredConnection } from "../Domain.js"
import { Connection, ConnectionExpiry } from "../Domain.js"

/** The announced expiry of the stored connection, and whether it has come (`now` in epoch milliseconds). */
export const expiryOf = (stored: Option.Option<StoredConnection>, now: number) => {
  const expiresAt = Option.flatMap(stored, (s) => Option.fromNullable(s.expiresAt))
  return { expiresAt, lapsed: Option.isSome(expiresAt) && now >= DateTime.toEpochMillis(expiresAt.value) }
}

/** The connection with its announced expiry (and a reconnect link, when one was minted). */
export const withExpiry = (connection: Connection, expiresAt: DateTime.Utc, reconnect?: ConnectLink) =>
  Connection.make({
    ...connection,
    expiring: ConnectionExpiry.make({ expiresAt, ...(reconnect !== undefined ? { reconnect } : {}) })
  })

/** A run's connection is expiring: its span says when, and a warning tells the app to offer a reconnect. */
export const warnRun = (app: string, connection: Connection) => {
  if (connection.expiring === undefined) return Effect.void
  const at = DateTime.formatIso(connection.expiring.expiresAt)
  return Effect.zipRight(
    Effect.annotateCurrentSpan({ "zapier.connection_expires_at": at }),
    Effect.logWarning(
      "This run uses a connection Zapier will expire; offer the user a reconnect (ensureConnection with reconnectIfExpiring)"
    ).pipe(Effect.annotateLogs({ "zapier.app": app, "zapier.connection_expires_at": at }))
  )
}

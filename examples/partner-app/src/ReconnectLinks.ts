/**
 * The reconnect links of expiring connections, kept while they are still good: `GET /api/apps/:app/connection`
 * of an expiring connection answers with a reconnect link, and minting one costs a connect token (a Zapier
 * request, from the same 60 per minute as everything else). A page reload or a poll would mint one per GET; this
 * keeps the last link per user and app and hands it out again until {@link margin} before it expires.
 *
 * Memory only, like the app's consumers (`Watches`): a link lives minutes, holds a single-use token that must not
 * be written anywhere, and a restart only costs one more token. An entry is dropped when the connection is no
 * longer expiring (renewed), when a Connect callback or popup answer for that user and app arrives (the link was
 * used, or given up), and once it is within the margin of its end.
 */
import type { Domain } from "@effect-zapier/core"
import { Clock, Context, DateTime, Duration, Effect, Layer, Option, Ref } from "effect"

/**
 * How long before its token's end a link stops being handed out: the user still has this long to open it (a
 * connect token lasts 6 minutes, so a link is reused for its first 4). A token shorter than this is never reused.
 */
export const margin = Duration.minutes(2)

export interface Service {
  /** The link kept for `user` and `app` (and the connection it renews), if it has more than the margin left. */
  readonly get: (user: Domain.EndUser, app: Domain.AppId) => Effect.Effect<Option.Option<Kept>>
  /** Keeps `link`, the reconnect link of `user`'s `connection` to `app`. */
  readonly set: (
    user: Domain.EndUser,
    app: Domain.AppId,
    connection: Domain.ConnectionId,
    link: Domain.ConnectLink
  ) => Effect.Effect<void>
  /** Forgets the link of `user` and `app` (renewed, or the link was used). */
  readonly drop: (user: Domain.EndUser, app: Domain.AppId) => Effect.Effect<void>
}

export class ReconnectLinks extends Context.Tag("partner-app/ReconnectLinks")<ReconnectLinks, Service>() {}

/** A kept link: the reconnect link of `connection`. */
export interface Kept {
  readonly connection: Domain.ConnectionId
  readonly link: Domain.ConnectLink
}

interface Entry extends Kept {
  /** Epoch millis from which it is no longer handed out. */
  readonly until: number
}

/** One entry per user and app: the tenant, the user and the app, unambiguous. */
const keyOf = (user: Domain.EndUser, app: Domain.AppId) => JSON.stringify([user.tenantId, user.userId, app])

export const make = Effect.gen(function* () {
  const entries = yield* Ref.make<ReadonlyMap<string, Entry>>(new Map())
  const marginMillis = Duration.toMillis(margin)

  const get: Service["get"] = (user, app) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.map(Ref.get(entries), (m) => {
        const entry = m.get(keyOf(user, app))
        return entry !== undefined && now < entry.until
          ? Option.some({ connection: entry.connection, link: entry.link })
          : Option.none()
      })
    )

  const set: Service["set"] = (user, app, connection, link) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Ref.update(entries, (m) => {
        // Entries past their use are dropped here, so users who never come back leave nothing behind.
        const next = new Map([...m].filter(([, e]) => now < e.until))
        const until = DateTime.toEpochMillis(link.expiresAt) - marginMillis
        if (now < until) next.set(keyOf(user, app), { connection, link, until })
        else next.delete(keyOf(user, app))
        return next
      })
    )

  const drop: Service["drop"] = (user, app) =>
    Ref.update(entries, (m) => {
      const key = keyOf(user, app)
      if (!m.has(key)) return m
      const next = new Map(m)
      next.delete(key)
      return next
    })

  return ReconnectLinks.of({ get, set, drop })
})

export const layer: Layer.Layer<ReconnectLinks> = Layer.effect(ReconnectLinks, make)

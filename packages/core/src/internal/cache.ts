/**
 * A small in-memory cache keyed per end user, bounded twice: at most `maxUsers` users (the least recently used
 * user's entries go first) and at most `maxPerUser` entries per user (the least recently used entry goes first).
 * One user's entries are never visible to another: every read and write names the user. Entries carry the time
 * they were written; freshness is the caller's decision (each cache has its own time to live).
 * @internal
 */
import type { EndUser } from "../Domain.js"

/** @internal */
export interface Entry<V> {
  readonly value: V
  /** Epoch millis when the entry was written. */
  readonly at: number
}

/** @internal */
export interface UserCache<V> {
  readonly get: (user: EndUser, key: string) => Entry<V> | undefined
  readonly set: (user: EndUser, key: string, value: V, at: number) => void
  readonly delete: (user: EndUser, key: string) => void
  /** Drops every entry of the user whose value matches. */
  readonly deleteWhere: (user: EndUser, matches: (value: V) => boolean) => void
  /** Users and entries held (for tests of the bounds). */
  readonly size: () => { readonly users: number; readonly entries: number }
}

/** A key no two users share (tenant and user id may contain any character, so their lengths are part of it). */
export const userKey = (user: EndUser): string => `${user.tenantId.length}:${user.tenantId}|${user.userId}`

/** @internal */
export const make = <V>(bounds: { readonly maxUsers: number; readonly maxPerUser: number }): UserCache<V> => {
  // Map iteration order is insertion order: re-inserting on use keeps the least recently used first.
  const users = new Map<string, Map<string, Entry<V>>>()
  const touch = (user: EndUser, create: boolean): Map<string, Entry<V>> | undefined => {
    const k = userKey(user)
    const found = users.get(k)
    if (found !== undefined) {
      users.delete(k)
      users.set(k, found)
      return found
    }
    if (!create) return undefined
    const fresh = new Map<string, Entry<V>>()
    users.set(k, fresh)
    while (users.size > Math.max(1, bounds.maxUsers)) {
      const oldest = users.keys().next()
      if (oldest.done === true) break
      users.delete(oldest.value)
    }
    return fresh
  }
  return {
    get: (user, key) => {
      const entries = touch(user, false)
      const entry = entries?.get(key)
      if (entries === undefined || entry === undefined) return undefined
      entries.delete(key)
      entries.set(key, entry)
      return entry
    },
    set: (user, key, value, at) => {
      const entries = touch(user, true)!
      entries.delete(key)
      entries.set(key, { value, at })
      while (entries.size > Math.max(1, bounds.maxPerUser)) {
        const oldest = entries.keys().next()
        if (oldest.done === true) break
        entries.delete(oldest.value)
      }
    },
    delete: (user, key) => {
      users.get(userKey(user))?.delete(key)
    },
    deleteWhere: (user, matches) => {
      const entries = users.get(userKey(user))
      if (entries === undefined) return
      for (const [key, entry] of [...entries]) if (matches(entry.value)) entries.delete(key)
    },
    size: () => ({
      users: users.size,
      entries: [...users.values()].reduce((n, m) => n + m.size, 0)
    })
  }
}

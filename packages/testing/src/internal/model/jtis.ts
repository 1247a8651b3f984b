/**
 * The `jti`s of the partner JWTs the token endpoint accepted, each remembered until its JWT expires, so a replayed
 * JWT is refused. O(1) amortised per exchange: a map keyed by jti for the check, and the same entries in the order
 * they came for the pruning, which drops entries from the front while they have expired.
 *
 * A JWT's `exp` is at most the token endpoint's longest lifetime past its `iat` (300 s by default), and its `iat` is
 * not in the future, so the order the entries came in is their expiry order to within that lifetime: an entry that
 * expired behind one that has not yet is dropped at most one lifetime late (the check reads its `exp`, so it is
 * forgotten on time), and the entries held are at most the exchanges of the last lifetime (plus the clock tolerance).
 *
 * @internal
 */

interface Entry {
  readonly jti: string
  /** The JWT's `exp`, in epoch seconds. */
  readonly exp: number
}

/** Compact the arrival queue once this many entries have been dropped from its front (and they are half of it). */
const compactAfter = 1024

export class JtiRegistry {
  private readonly byJti = new Map<string, number>()
  private readonly arrivals: Array<Entry> = []
  private head = 0

  /**
   * Remembers `jti` until `exp` (epoch seconds) and returns `true`, or returns `false` when it is already
   * remembered and its earlier JWT has not expired at `now` (epoch millis): a replay.
   */
  use(jti: string, exp: number, now: number): boolean {
    this.prune(now)
    const seen = this.byJti.get(jti)
    if (seen !== undefined && seen * 1000 > now) return false
    this.byJti.set(jti, exp)
    this.arrivals.push({ jti, exp })
    return true
  }

  /** The jtis held (expired ones not pruned yet included). */
  get size(): number {
    return this.byJti.size
  }

  private prune(now: number): void {
    const arrivals = this.arrivals
    while (this.head < arrivals.length) {
      const entry = arrivals[this.head]
      if (entry === undefined || entry.exp * 1000 > now) break
      // A jti used again after its first JWT expired holds the later exp: that one stays.
      if (this.byJti.get(entry.jti) === entry.exp) this.byJti.delete(entry.jti)
      this.head++
    }
    if (this.head >= compactAfter && this.head * 2 >= arrivals.length) {
      arrivals.splice(0, this.head)
      this.head = 0
    }
  }
}

/**
 * Run durations learned per action, in bounded memory, and the polls placed from them (the adaptive schedule).
 *
 * A finished run teaches an interval: it was still pending at `lo` (the last poll that saw it pending, or its
 * creation) and had ended by `hi` (the poll that saw it end), both in ms since the run was created. The midpoint
 * is kept, the last `samplesPerKey` of them per action; at most `maxKeys` actions are remembered (the least
 * recently used goes first).
 *
 * The plan: polls at the quantiles 1/2, 3/4, 7/8, … of the learned durations, up to the longest one. Each poll
 * then finds about half of the runs still pending at the previous one finished, so a run costs about two reads
 * whatever its length, and for an action whose runs take about as long every time, the first poll lands just after
 * the end. A run longer than every one seen falls back to the fixed schedule (see `Polling.schedule`).
 * @internal
 */

/** @internal */
export interface Bounds {
  readonly maxKeys: number
  readonly samplesPerKey: number
  /** Runs to learn from before the plan replaces the fixed schedule. */
  readonly minSamples: number
}

/** @internal */
export const defaultBounds: Bounds = { maxKeys: 1_000, samplesPerKey: 32, minSamples: 2 }

/** @internal */
export interface Learned {
  /** Offsets (ms since the run was created) to poll at, increasing; empty when too little is known. */
  readonly plan: (key: string) => ReadonlyArray<number>
  readonly record: (key: string, sample: { readonly lo: number; readonly hi: number }) => void
  readonly size: () => number
}

/** The key of an action: app, action key and type (a key may exist for several types). @internal */
export const keyOf = (app: string, action: string, actionType: string): string =>
  `${app.length}:${app}|${action.length}:${action}|${actionType}`

/** The empirical quantile `q` of sorted `xs` (nearest rank). */
const quantile = (xs: ReadonlyArray<number>, q: number): number =>
  xs[Math.min(xs.length - 1, Math.max(0, Math.ceil(q * xs.length) - 1))]!

/** @internal */
export const make = (bounds: Bounds = defaultBounds): Learned => {
  const samples = new Map<string, Array<number>>()
  return {
    plan: (key) => {
      const mine = samples.get(key)
      if (mine === undefined || mine.length < Math.max(1, bounds.minSamples)) return []
      samples.delete(key)
      samples.set(key, mine)
      const sorted = [...mine].sort((a, b) => a - b)
      const last = sorted[sorted.length - 1]!
      const offsets: Array<number> = []
      for (let k = 1; k <= 20; k++) {
        const at = quantile(sorted, 1 - 2 ** -k)
        if (offsets.length === 0 || at > offsets[offsets.length - 1]!) offsets.push(at)
        if (at >= last) break
      }
      if (offsets[offsets.length - 1]! < last) offsets.push(last)
      return offsets
    },
    record: (key, { lo, hi }) => {
      if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi < 0 || hi < lo) return
      const mine = samples.get(key) ?? []
      samples.delete(key)
      mine.push((Math.max(0, lo) + hi) / 2)
      while (mine.length > Math.max(1, bounds.samplesPerKey)) mine.shift()
      samples.set(key, mine)
      while (samples.size > Math.max(1, bounds.maxKeys)) {
        const oldest = samples.keys().next()
        if (oldest.done === true) break
        samples.delete(oldest.value)
      }
    },
    size: () => samples.size
  }
}

/**
 * Run durations learned per action, in bounded memory, and the polls placed from them (the adaptive schedule).
 *
 * A finished run teaches an interval: it was still pending at `lo` (the last poll that saw it pending, or its
 * creation) and had ended by `hi` (the poll that saw it end), both in ms since the run was created. The last
 * `samplesPerKey` intervals are kept per action; at most `maxKeys` actions are remembered (the least recently used
 * goes first).
 *
 * The plan: the poll offsets that cost the fewest reads for a mean detection lag within `margin` of the fixed
 * schedule's (`initialDelay · factor^n` capped at `maxDelay`, jitter-free) over the same learned durations. Each
 * interval stands for two durations, at its quarter and three quarters (where in it the run ended is not known; a
 * run whose first read saw it ended stands for the durations of the others that ended that early), spread on a log
 * scale by a kernel whose width follows how much the durations vary (none for an action whose runs take as long
 * every time; for a full window of runs all seen ended at their first read, how much their bounds vary). The polls
 * are placed among them by an exact dynamic program minimising reads + λ · lag, with λ the smallest (found by
 * bisection) whose plan keeps the lag within the bound. For an action whose runs take about as long every time
 * that is one poll just after the end; for a spread of durations, polls dense where runs usually end and sparse
 * where few do. A run longer than every one seen falls back to the fixed schedule (see
 * `Polling.schedule`). The first runs of an action (fewer than `minSamples`) are polled on the fixed schedule, with
 * its lag bound. A plan is made again once a quarter of the samples are new since it was made (every 8 runs of an
 * action at 32 samples), so a busy action does not pay for the dynamic program (about 1 ms) on every run.
 *
 * Measured (economy bench, full size, log-normal mix, median 2 s, σ 1): ~2.3 reads and ~1.5 s mean lag per run,
 * against ~3.5 reads and 0.9 s on the fixed schedule. With the exact durations known, the dynamic program needs
 * ~2.5 reads for the fixed schedule's lag on that mix, so lag parity and 4.5 requests per run do not fit together
 * there; on actions whose runs take about as long every time the plan is one or two reads with a lag under 0.5 s.
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

/** The fixed schedule the plan must not lag behind (ms): `Polling.PolicyShape`'s delays. @internal */
export interface Fixed {
  readonly initialDelay: number
  readonly factor: number
  readonly maxDelay: number
}

/** `Polling.defaults`' delays. @internal */
export const defaultFixed: Fixed = { initialDelay: 500, factor: 1.5, maxDelay: 5_000 }

/** @internal */
export interface Learned {
  /** Offsets (ms since the run was created) to poll at, increasing; empty when too little is known. */
  readonly plan: (key: string, fixed?: Fixed) => ReadonlyArray<number>
  readonly record: (key: string, sample: { readonly lo: number; readonly hi: number }) => void
  readonly size: () => number
}

/** The key of an action: app, action key and type (a key may exist for several types). @internal */
export const keyOf = (app: string, action: string, actionType: string): string =>
  `${app.length}:${app}|${action.length}:${action}|${actionType}`

/** The fixed schedule's poll offsets (jitter-free), up to the first at or after `until`. @internal */
export const fixedOffsets = (fixed: Fixed, until: number): ReadonlyArray<number> => {
  const cap = Math.max(1, fixed.maxDelay)
  const out: Array<number> = []
  let t = 0
  let delay = Math.min(cap, Math.max(1, fixed.initialDelay))
  while (out.length < 100_000) {
    t += delay
    out.push(t)
    if (t >= until) break
    delay = Math.min(cap, delay * Math.max(1, fixed.factor))
  }
  return out
}

/** A duration (ms) and its weight. */
interface Point {
  readonly x: number
  readonly w: number
}

/**
 * Mean reads and mean lag of polling at `offsets` for runs ending at the sorted `points` (weighted; a run after
 * the last offset counts as seen by it). @internal
 */
export const evaluate = (
  offsets: ReadonlyArray<number>,
  points: ReadonlyArray<Point>
): { readonly reads: number; readonly lag: number } => {
  let i = 0
  let reads = 0
  let lag = 0
  let total = 0
  for (const { x, w } of points) {
    while (i < offsets.length - 1 && offsets[i]! < x) i++
    reads += w * (i + 1)
    lag += w * Math.max(0, offsets[i]! - x)
    total += w
  }
  return { reads: reads / total, lag: lag / total }
}

/**
 * The polls among the sorted `candidates` (the last one the largest of `points`) that minimise Σ reads + λ · Σ lag
 * over the weighted `points`: poll `c` after poll `p` is read by every run still pending at `p`, and the runs
 * ending in `(p, c]` wait for it. Exact, in O(candidates²) per λ (the sums over the points are made once).
 */
const optimiser = (points: ReadonlyArray<Point>, candidates: ReadonlyArray<number>) => {
  const n = points.length
  const m = candidates.length
  // weight[k], moment[k]: the weight of the points ≤ candidates[k], and their weighted sum of durations.
  const weight = new Float64Array(m)
  const moment = new Float64Array(m)
  for (let k = 0, i = 0, w = 0, x = 0; k < m; k++) {
    while (i < n && points[i]!.x <= candidates[k]!) {
      w += points[i]!.w
      x += points[i]!.w * points[i]!.x
      i++
    }
    weight[k] = w
    moment[k] = x
  }
  const total = points.reduce((sum, p) => sum + p.w, 0)
  const best = new Float64Array(m)
  const before = new Int32Array(m)
  return (lambda: number): ReadonlyArray<number> => {
    for (let k = 0; k < m; k++) {
      const c = candidates[k]!
      const wk = weight[k]!
      const mk = moment[k]!
      let cost = total + lambda * (wk * c - mk)
      let arg = -1
      for (let j = 0; j < k; j++) {
        const wj = weight[j]!
        const through = best[j]! + (total - wj) + lambda * ((wk - wj) * c - (mk - moment[j]!))
        if (through < cost) {
          cost = through
          arg = j
        }
      }
      best[k] = cost
      before[k] = arg
    }
    const offsets: Array<number> = []
    for (let k = m - 1; k >= 0; k = before[k]!) offsets.push(candidates[k]!)
    return offsets.reverse()
  }
}

/**
 * How far each learned duration is spread (log scale) before the polls are placed, since runs vary around what was
 * seen: Silverman's rule of thumb, 0.9 · min(σ, IQR / 1.34) · n^(−1/5) of the log durations (0 for an action whose
 * runs take as long every time), over five points at −h, −h/2, 0, h/2, h.
 */
const bandwidth = (logs: ReadonlyArray<number>): number => {
  const n = logs.length
  if (n < 2) return 0
  const mean = logs.reduce((a, b) => a + b, 0) / n
  const sd = Math.sqrt(logs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1))
  const sorted = [...logs].sort((a, b) => a - b)
  const iqr = sorted[Math.floor(0.75 * (n - 1))]! - sorted[Math.floor(0.25 * (n - 1))]!
  const spread = Math.min(sd, iqr / 1.34)
  return 0.9 * (spread > 0 ? spread : sd) * n ** -0.2
}

/** At most this many poll candidates (quantiles of the spread durations): bounds the dynamic program's cost. */
const maxCandidates = 64

/**
 * The plan's mean lag over the learned durations, as a share of the fixed schedule's. Below 1 because the plan is
 * fitted to the durations it learned from and lags more on the next runs; 0.8 measured on the economy bench's
 * log-normal mix keeps it within 4.5 requests per run (reads cost ~2.3 there, against ~3.5 on the fixed schedule).
 */
const margin = 0.8

/**
 * The durations the learned intervals stand for: an interval `(lo, hi]` for its quarter and three quarters; a run
 * whose first read already saw it ended (`lo` 0: only "by `hi`" is known) for the other runs' durations up to `hi`
 * (their share of it), or, when none ended that early, for `hi / 4` and `3 hi / 4`.
 */
const pointsOf = (samples: ReadonlyArray<{ readonly lo: number; readonly hi: number }>): Array<Point> => {
  const known = samples
    .filter(({ lo }) => lo > 0)
    .flatMap(({ lo, hi }) => [lo + (hi - lo) / 4, lo + (3 * (hi - lo)) / 4])
  const out: Array<Point> = known.map((x) => ({ x, w: 1 }))
  for (const { lo, hi } of samples) {
    if (lo > 0) continue
    const earlier = known.filter((x) => x <= hi)
    if (earlier.length === 0) out.push({ x: hi / 4, w: 1 }, { x: (3 * hi) / 4, w: 1 })
    else for (const x of earlier) out.push({ x, w: 2 / earlier.length })
  }
  return out
}

/**
 * The log durations whose spread sets the kernel's width: those of the points, except for a full window of runs
 * none of which was seen pending, where it is their bounds `hi` (how much those runs vary), not the quarter and
 * three quarters each stands for. That split says only that where in `(0, hi]` each ended is not known; read as
 * variation, it widened such a plan by a quarter, so its poll came down by only ~7 % per window of runs and
 * settled at ~20 times what a read adds to the planned offset before its answer (the timer's lateness and the
 * round trip; ~5 times now). Fewer runs, or one seen pending, keep it.
 */
const spreadOf = (
  samples: ReadonlyArray<{ readonly lo: number; readonly hi: number }>,
  points: ReadonlyArray<Point>,
  full: boolean
): Array<number> =>
  (full && samples.every(({ lo }) => lo === 0) ? samples.map(({ hi }) => hi) : points.map((p) => p.x)).map((x) =>
    Math.log(Math.max(1, x))
  )

/** The plan for the learned intervals (see the module's description). */
const planOf = (samples: ReadonlyArray<{ readonly lo: number; readonly hi: number }>, fixed: Fixed, full: boolean) => {
  const seen = pointsOf(samples)
  const h = bandwidth(spreadOf(samples, seen, full))
  const kernel = [-h, -h / 2, 0, h / 2, h].map(Math.exp)
  const points = seen
    .flatMap((p) => kernel.map((f) => ({ x: p.x * f, w: p.w / kernel.length })))
    .sort((a, b) => a.x - b.x)
  const last = points[points.length - 1]!.x
  const target = margin * evaluate(fixedOffsets(fixed, last), points).lag
  const step = Math.max(1, Math.ceil(points.length / maxCandidates))
  const candidates = points.filter((_, i) => i % step === step - 1 || i === points.length - 1).map((p) => p.x)
  // λ is reads per ms of lag: from one read per day of lag (nearly one poll) to one per µs (a poll at every point).
  let low = 1 / 86_400_000
  let high = 1_000
  const optimal = optimiser(points, candidates)
  let plan = optimal(high)
  for (let i = 0; i < 16; i++) {
    const lambda = Math.sqrt(low * high)
    const candidate = optimal(lambda)
    if (evaluate(candidate, points).lag <= target) {
      plan = candidate
      high = lambda
    } else low = lambda
  }
  return plan
}

/** @internal */
export const make = (bounds: Bounds = defaultBounds): Learned => {
  const samples = new Map<string, Array<{ readonly lo: number; readonly hi: number }>>()
  /** The last plan per action, what it was made for, and the samples recorded since. */
  const plans = new Map<
    string,
    { readonly fixed: Fixed; readonly offsets: ReadonlyArray<number>; readonly samples: number; fresh: number }
  >()
  return {
    plan: (key, fixed = defaultFixed) => {
      const mine = samples.get(key)
      if (mine === undefined || mine.length < Math.max(1, bounds.minSamples)) return []
      samples.delete(key)
      samples.set(key, mine)
      const made = plans.get(key)
      if (
        made !== undefined &&
        made.fresh < Math.max(1, Math.ceil(made.samples / 4)) &&
        made.fixed.initialDelay === fixed.initialDelay &&
        made.fixed.factor === fixed.factor &&
        made.fixed.maxDelay === fixed.maxDelay
      ) {
        return made.offsets
      }
      const offsets = planOf(mine, fixed, mine.length >= Math.max(1, bounds.samplesPerKey))
      plans.set(key, { fixed, offsets, samples: mine.length, fresh: 0 })
      return offsets
    },
    record: (key, { lo, hi }) => {
      if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi < 0 || hi < lo) return
      const mine = samples.get(key) ?? []
      samples.delete(key)
      const made = plans.get(key)
      if (made !== undefined) made.fresh++
      mine.push({ lo: Math.max(0, lo), hi })
      while (mine.length > Math.max(1, bounds.samplesPerKey)) mine.shift()
      samples.set(key, mine)
      while (samples.size > Math.max(1, bounds.maxKeys)) {
        const oldest = samples.keys().next()
        if (oldest.done === true) break
        samples.delete(oldest.value)
        plans.delete(oldest.value)
      }
    },
    size: () => samples.size
  }
}

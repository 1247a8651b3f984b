/**
 * Test harness of the reliability suite (fault matrix, chaos, properties): window counting, a clock driver for
 * real sockets under the TestClock, and the canary check over every sink.
 */

/** The most timestamps found in any window `(t - window, t]`. */
export const maxInAnyWindow = (times: ReadonlyArray<number>, windowMillis: number): number => {
  const sorted = [...times].sort((a, b) => a - b)
  let max = 0
  let first = 0
  for (let i = 0; i < sorted.length; i++) {
    while (sorted[first]! <= sorted[i]! - windowMillis) first++
    max = Math.max(max, i - first + 1)
  }
  return max
}

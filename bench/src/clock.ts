/**
 * A clock that runs `scale` times faster than the live one from `origin` (epoch ms) on. The budget scenario puts
 * the fake server and the client on the same scaled clock (same origin), so a per-minute budget, a 60 s
 * `Retry-After` and the polling schedule all keep their shape while playing out in seconds.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

export const scaled = (scale: number, origin: number): Clock.Clock => {
  const live = Clock.make()
  const millis = () => origin + (live.unsafeCurrentTimeMillis() - origin) * scale
  const nanos = () => BigInt(Math.round(millis() * 1_000_000))
  return {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: millis,
    currentTimeMillis: Effect.sync(millis),
    unsafeCurrentTimeNanos: nanos,
    currentTimeNanos: Effect.sync(nanos),
    sleep: (duration) => live.sleep(Duration.millis(Duration.toMillis(duration) / scale))
  }
}

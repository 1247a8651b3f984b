import type * as Net from "node:net"

/**
 * One direction of a connection: writes chunks to `dest` in order, each not before its due time.
 * `undefined` data is the end of the stream.
 */
export class Lane {
  private readonly queue: Array<{ readonly data: Buffer | undefined; readonly due: number }> = []
  private timer: ReturnType<typeof setTimeout> | undefined = undefined
  private lastDue = 0

  constructor(
    private readonly dest: Net.Socket,
    private readonly written: (bytes: number) => void
  ) {}

  send(data: Buffer, delayMillis: number, bytesPerSecond?: number) {
    let due = Math.max(performance.now() + delayMillis, this.lastDue)
    if (bytesPerSecond === undefined) return this.enqueue(data, due)
    // Slices of about 50 ms each, spaced to the bandwidth.
    const size = Math.max(1, Math.floor(bytesPerSecond / 20))
    for (let offset = 0; offset < data.length; offset += size) {
      const slice = data.subarray(offset, offset + size)
      due += (slice.length / bytesPerSecond) * 1000
      this.enqueue(slice, due)
    }
  }

  end() {
    this.enqueue(undefined, Math.max(performance.now(), this.lastDue))
  }

  stop() {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.queue.length = 0
  }

  private enqueue(data: Buffer | undefined, due: number) {
    this.lastDue = due
    this.queue.push({ data, due })
    if (this.timer === undefined) this.pump()
  }

  private readonly pump = () => {
    this.timer = undefined
    const now = performance.now()
    while (this.queue.length > 0 && this.queue[0].due <= now) {
      const { data } = this.queue.shift()!
      if (this.dest.destroyed) continue
      if (data === undefined) {
        this.dest.end()
      } else {
        this.dest.write(data)
        this.written(data.length)
      }
    }
    if (this.queue.length > 0) this.timer = setTimeout(this.pump, this.queue[0].due - now)
  }
}

/**
 * A Server-Sent Events reader for the Trigger Inbox event stream, tolerant by design: it never fails. A frame
 * (lines up to a blank line) with a `data:` field is a wake-up; a frame of comments only (`: keep-alive`) is a
 * heartbeat; other fields (`event:`, `id:`, `retry:`) and unknown lines are ignored; a line longer than the cap
 * makes its frame be skipped (the rest of that line is discarded as it arrives, so memory stays bounded). Lines
 * end with `\n`, `\r\n` or `\r`, also across chunk boundaries.
 * @internal
 */

/** What one frame meant. @internal */
export type Frame = "data" | "comment"

/** The reader's state between chunks. @internal */
export interface Reader {
  /** The current, unfinished line. */
  line: string
  /** The current line is over the cap: drop it up to its end. */
  dropping: boolean
  /** The previous chunk ended with `\r` (a following `\n` belongs to it). */
  afterCr: boolean
  /** What the current frame has so far. */
  data: boolean
  comment: boolean
  /** The current frame had a line over the cap: skip it. */
  skip: boolean
  /** Frames skipped so far (for a log line). */
  skipped: number
}

/** @internal */
export const makeReader = (): Reader => ({
  line: "",
  dropping: false,
  afterCr: false,
  data: false,
  comment: false,
  skip: false,
  skipped: 0
})

const endLine = (reader: Reader, out: Array<Frame>) => {
  const line = reader.line
  reader.line = ""
  if (reader.dropping) {
    reader.dropping = false
    return
  }
  if (line.length === 0) {
    if (reader.skip) reader.skipped++
    else if (reader.data) out.push("data")
    else if (reader.comment) out.push("comment")
    reader.data = false
    reader.comment = false
    reader.skip = false
    return
  }
  if (line.startsWith(":")) {
    reader.comment = true
    return
  }
  const colon = line.indexOf(":")
  const field = colon === -1 ? line : line.slice(0, colon)
  if (field === "data") reader.data = true
}

/**
 * Feeds one chunk of text; returns the frames it completed.
 * @internal
 */
export const feed = (reader: Reader, chunk: string, maxLine: number): ReadonlyArray<Frame> => {
  const out: Array<Frame> = []
  let start = 0
  for (let i = 0; i < chunk.length; i++) {
    const c = chunk.charCodeAt(i)
    if (c !== 10 && c !== 13) continue
    if (c === 10 && reader.afterCr && i === start && reader.line.length === 0 && !reader.dropping) {
      // The `\n` of a `\r\n` split across chunks (or right after the `\r`).
      reader.afterCr = false
      start = i + 1
      continue
    }
    append(reader, chunk.slice(start, i), maxLine)
    endLine(reader, out)
    reader.afterCr = c === 13
    if (c === 13 && chunk.charCodeAt(i + 1) === 10) i++
    if (c === 13 && i + 1 < chunk.length) reader.afterCr = false
    start = i + 1
  }
  if (start < chunk.length) {
    reader.afterCr = false
    append(reader, chunk.slice(start), maxLine)
  }
  return out
}

const append = (reader: Reader, text: string, maxLine: number) => {
  if (text.length === 0 || reader.dropping) return
  if (reader.line.length + text.length > maxLine) {
    reader.line = ""
    reader.dropping = true
    reader.skip = true
    return
  }
  reader.line += text
}

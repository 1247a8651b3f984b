import * as Effect from "effect/Effect"
import * as Encoding from "effect/Encoding"

/** JSON with every object's keys sorted, so two equal requests give the same text whatever their key order. */
const canonical = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(canonical)
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(value).sort()) out[key] = canonical((value as Record<string, unknown>)[key])
    return out
  }
  return value
}

/** SHA-256 (hex) of the canonical form of a JSON text. */
export const fingerprint = (json: string): Effect.Effect<string> =>
  Effect.promise(() =>
    globalThis.crypto.subtle.digest("SHA-256", new TextEncoder().encode(JSON.stringify(canonical(JSON.parse(json)))))
  ).pipe(Effect.map((digest) => Encoding.encodeHex(new Uint8Array(digest))))

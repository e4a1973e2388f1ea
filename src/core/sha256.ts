/**
 * SHA-256 (FIPS 180-4) of a string's UTF-8 bytes, in plain JavaScript on buffers allocated once.
 *
 * Every command hashes a few hundred bytes (its event's chain link, a keyed request), and for
 * input that short the call into native crypto costs more than the hashing: in workerd one
 * `createHash("sha256").update(text).digest("hex")` of a 250-byte event takes 5–6 µs, this
 * 2–3 µs (bench/RESULTS.md, "What binds a busy actor"). Long input (a snapshot's state, a
 * document) goes to native crypto, which is faster per byte. Both give the same digest: strings
 * are encoded as UTF-8 with lone surrogates as U+FFFD, as `TextEncoder` and `node:crypto` do.
 */
import { createHash } from "node:crypto"

/** Input up to this many UTF-16 units is hashed here; longer goes to native crypto. */
const SHORT_INPUT = 4096

const ROUND_CONSTANTS = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
])

const INITIAL_HASH = new Uint32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
])

const encoder = new TextEncoder()
// A UTF-16 unit takes at most 3 UTF-8 bytes; room for the padding (at most 72 bytes) beside them.
const bytes = new Uint8Array(SHORT_INPUT * 3 + 128)
const words = new DataView(bytes.buffer)
const schedule = new Uint32Array(64)
const digest = new Uint32Array(8)
const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"))

const compress = (offset: number): void => {
  const w = schedule
  for (let i = 0; i < 16; i++) w[i] = words.getUint32(offset + i * 4)
  for (let i = 16; i < 64; i++) {
    const x = w[i - 15]!
    const y = w[i - 2]!
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3)
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10)
    w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0
  }
  let a = digest[0]!
  let b = digest[1]!
  let c = digest[2]!
  let d = digest[3]!
  let e = digest[4]!
  let f = digest[5]!
  let g = digest[6]!
  let h = digest[7]!
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))
    const t1 = (h + S1 + ((e & f) ^ (~e & g)) + ROUND_CONSTANTS[i]! + w[i]!) | 0
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))
    const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0
    h = g
    g = f
    f = e
    e = (d + t1) | 0
    d = c
    c = b
    b = a
    a = (t1 + t2) | 0
  }
  digest[0] = digest[0]! + a
  digest[1] = digest[1]! + b
  digest[2] = digest[2]! + c
  digest[3] = digest[3]! + d
  digest[4] = digest[4]! + e
  digest[5] = digest[5]! + f
  digest[6] = digest[6]! + g
  digest[7] = digest[7]! + h
}

/** The SHA-256 of `text`'s UTF-8 bytes, as 64 lowercase hex digits. */
/** The digest computed here, in script, for input up to SHORT_INPUT units (exported for its test). */
export const scriptSha256 = (text: string): string => {
  const length = encoder.encodeInto(text, bytes).written
  // Padding: one 1 bit, zeros up to 8 bytes short of a 64-byte block, then the length in bits.
  const padded = (((length + 8) >>> 6) + 1) << 6
  bytes.fill(0, length, padded)
  bytes[length] = 0x80
  words.setUint32(padded - 8, Math.floor(length / 0x20000000))
  words.setUint32(padded - 4, (length << 3) >>> 0)
  digest.set(INITIAL_HASH)
  for (let offset = 0; offset < padded; offset += 64) compress(offset)
  let hex = ""
  for (let i = 0; i < 8; i++) {
    const word = digest[i]!
    hex += HEX[word >>> 24]! + HEX[(word >>> 16) & 0xff]! + HEX[(word >>> 8) & 0xff]! + HEX[word & 0xff]!
  }
  return hex
}

const nativeSha256 = (text: string) => createHash("sha256").update(text).digest("hex")

/**
 * Only workerd makes the native call dear; Node's costs a third of the script's (0.7 against
 * 2 µs for 260 bytes), so the CLI's replay and verify of long logs keep to it.
 */
const nativeIsDear = typeof navigator !== "undefined" && navigator.userAgent === "Cloudflare-Workers"

export const sha256 = (text: string): string =>
  nativeIsDear && text.length <= SHORT_INPUT ? scriptSha256(text) : nativeSha256(text)

import { createHash } from "node:crypto"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { scriptSha256, sha256 as chosenSha256 } from "../../src/core/sha256.js"

/** The script digest (what workerd runs for short input); Node itself takes the native one. */
const sha256 = scriptSha256

const nativeSha256 = (text: string) => createHash("sha256").update(text).digest("hex")

describe("sha256", () => {
  it("matches the FIPS 180-4 test vectors", () => {
    expect(sha256("")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    expect(sha256("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    expect(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")).toBe(
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    )
  })

  it("gives node:crypto's digest of the UTF-8 bytes, at every length around the block and padding edges", () => {
    for (let length = 0; length <= 200; length++)
      expect(sha256("é".repeat(length))).toBe(nativeSha256("é".repeat(length)))
    for (const length of [4095, 4096]) expect(sha256("x".repeat(length))).toBe(nativeSha256("x".repeat(length)))
  })

  it("gives node:crypto's digest of any string, lone surrogates included", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 1500 }), (text) => {
        expect(sha256(text)).toBe(nativeSha256(text))
      }),
      { numRuns: 500 },
    )
  })
})

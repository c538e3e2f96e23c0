// Package crypto holds everything a partner does to its identifiers before
// they leave its machine, and the checks the room makes on what it receives.
//
// # Identifiers and match keys
//
// An identifier (email, phone number, mobile advertising id, or a custom id)
// is first normalized under a named, versioned [Profile] ("pair-v1",
// "gmail-v1"). The match key is the SHA-256 of the normalized value; its text
// form is 64 lowercase hex characters. Input that is already a SHA-256 (64 hex
// characters, or 44 characters of standard base64) passes through unchanged,
// so partners that only keep hashed identifiers can take part.
//
// Match keys are never sent to the room: a plain SHA-256 of an email can be
// dictionary-attacked by anyone who holds it. What is sent is one of:
//
//   - hashed mode: HMAC-SHA256(Ks, hex(match key)), where Ks is the 32-byte
//     collaboration [Secret] shared by the members and never by the room.
//   - blinded mode (PAIR-compatible commutative encryption on ristretto255):
//     h = SHA-256(Ks || hex(match key)), P = FromUniformBytes(SHA-512(h)),
//     C = k·P with the partner's [BlindingKey] k. Every other member then
//     re-encrypts C with its own key; because scalar multiplication commutes,
//     a·b·P = b·a·P and fully encrypted values can be compared by the room
//     without it learning P or any key.
//
// This is the IAB Tech Lab PAIR protocol (SHA-256 + ristretto255, RFC 9496);
// outputs agree bit for bit with the vectors in testdata/.
//
// # Validation
//
// Decoding an [Element] rejects wrong lengths, non-canonical encodings and the
// identity element, each with its own sentinel error, and never panics. A
// [BlindingKey] is a canonical, non-zero scalar. Secret values (Ks, scalars,
// private keys) are incomparable structs whose String and LogValue redact.
//
// # Keys
//
// A partner's key file ([PartnerKey]) holds an Ed25519 signing key (used for
// the JWTs it presents to the room), an X25519 HPKE key pair (to receive the
// collaboration secret sealed by another member, see [SealSecret]) and a
// ristretto255 blinding scalar. Its public half is a JWK set.
package crypto

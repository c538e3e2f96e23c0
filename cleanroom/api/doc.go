// Package api is the room's HTTP interface as data: the request and response
// types, RFC 9457 problem details, and the upload and re-encryption wire
// formats. The room (package cleanroom) and the partner client
// (cleanroom/client) both speak it; it holds no state and does no I/O beyond
// the readers and writers it is given.
//
// The endpoints are listed in openapi.yaml beside this file, which a test
// keeps in step with the room's routes.
//
// # Upload formats
//
// A dataset is sent in numbered parts, each one HTTP request. Every part but
// the last holds exactly the rows per part declared when the upload started,
// so the room can find row r in part r / rows_per_part. The row count itself
// is declared either at the start or, for a client that reads its input
// once, at the commit (CommitUpload.Rows). The digest of a dataset is
// DatasetDigest of its parts' digests: both sides compute it, and the room
// commits an upload only when they agree.
//
// The binary format (PartContentType, Part) is what the partner client
// sends: the row count, the column count, the tokens, then the values, each
// length-prefixed. It is also how the room stores a part, so the room checks
// it in one pass and keeps it as it came. Its digest is the SHA-256 of the
// body.
//
// The gzip NDJSON format (cleanroom.dev/upload/v1, any other content type)
// is for hand-written clients: one row a line,
//
//	{"t":"<standard base64 of the 32-byte token>","a":["25-34","west","120.50"]}
//
// "t" is the hashed-mode token or the blinded element; "a" holds the row's
// attribute values in the order of the columns declared when the upload
// started. Its digest is the SHA-256 of the uncompressed bytes.
//
// # Re-encryption format (cleanroom.dev/elements/v1)
//
// Elements relayed for re-encryption travel as a plain concatenation of
// 32-byte ristretto255 encodings (application/octet-stream), a part at a
// time; the member returns the same number of elements, in the same order.
package api

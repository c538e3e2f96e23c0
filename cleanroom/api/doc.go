// Package api is the room's HTTP interface as data: the request and response
// types, RFC 9457 problem details, and the upload and re-encryption wire
// formats. The room (package cleanroom) and the partner client
// (cleanroom/client) both speak it; it holds no state and does no I/O beyond
// the readers and writers it is given.
//
// The endpoints are listed in openapi.yaml beside this file, which a test
// keeps in step with the room's routes.
//
// # Upload format (cleanroom.dev/upload/v1)
//
// A dataset is sent in numbered parts, each one HTTP request with a gzip body
// of newline-delimited JSON, one row a line:
//
//	{"t":"<standard base64 of the 32-byte token>","a":["25-34","west","120.50"]}
//
// "t" is the hashed-mode token or the blinded element; "a" holds the row's
// attribute values in the order of the columns declared when the upload
// started. Every part but the last holds exactly the declared rows per part,
// so the room can find row r in part r / rows_per_part. The digest of a part
// is the SHA-256 of its uncompressed bytes, and the digest of a dataset is
// DatasetDigest of its parts' digests: both sides compute it, and the room
// commits an upload only when they agree.
//
// # Re-encryption format (cleanroom.dev/elements/v1)
//
// Elements relayed for re-encryption travel as a plain concatenation of
// 32-byte ristretto255 encodings (application/octet-stream), a part at a
// time; the member returns the same number of elements, in the same order.
package api

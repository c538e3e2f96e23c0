// Package openapitest holds what proves the room's OpenAPI document
// (cleanroom/api/openapi.yaml) is a contract a partner can build on: a Go
// client generated from the document alone by a standard generator
// (client.gen.go, by oapi-codegen with oapi-codegen.yaml), and Contract,
// which checks every answer a server gives against the document (status,
// media type, JSON Schema of the body).
//
// The room's tests drive a real room through the generated client with
// Contract in its transport (cleanroom/openapi_client_test.go).
// TestGeneratedClientIsCurrent runs the generator line below and fails if
// its output differs from the committed client: after changing the
// document, run go generate here and commit the result.
//
// Only tests import this package.
package openapitest

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2 -config oapi-codegen.yaml ../openapi.yaml

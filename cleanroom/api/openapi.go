package api

import _ "embed"

// OpenAPI is the room's API contract (openapi.yaml, OpenAPI 3.1), served by
// no one. Tests keep it in step with the room's routes and wire types and
// drive a room through a client generated from it (openapitest).
//
//go:embed openapi.yaml
var OpenAPI []byte

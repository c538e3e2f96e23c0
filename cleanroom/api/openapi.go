package api

import _ "embed"

// OpenAPI is the room's API description (openapi.yaml), served by no one
// but kept in step with the room's routes by a test.
//
//go:embed openapi.yaml
var OpenAPI []byte

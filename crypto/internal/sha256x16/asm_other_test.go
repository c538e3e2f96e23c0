//go:build !amd64 || purego

package sha256x16

const haveAsm = false

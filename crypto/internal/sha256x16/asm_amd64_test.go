//go:build !purego

package sha256x16

const haveAsm = true

//go:build !linux

package store

func dropShared(start, end uintptr) {}

package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

func runVersion(e *env, args []string) error {
	fs := newFlags(e, "version", "", `
Prints the version of this build: its module version, the VCS revision it
was built from (when the build recorded one: go build stamps it from a git
checkout unless -buildvcs=false), and the Go toolchain. Also cleanroom --version.`)
	if err := fs.parse(args); err != nil {
		return err
	}
	info, ok := debug.ReadBuildInfo()
	fmt.Fprintln(e.stdout, versionLine(info, ok))
	return nil
}

// versionLine describes a build in one line, from what it recorded of
// itself, e.g. "cleanroom v0.4.0 (revision 4e9a1681c2d0, 2026-03-01T10:00:00Z,
// modified) go1.26.8 linux/amd64". What the build did not record is said to
// be unknown, never guessed.
func versionLine(info *debug.BuildInfo, ok bool) string {
	version, goVersion := "(unknown)", runtime.Version()
	var vcs []string
	revision := "revision unknown: built without VCS information"
	if ok && info != nil {
		if info.Main.Version != "" {
			version = info.Main.Version
		}
		if info.GoVersion != "" {
			goVersion = info.GoVersion
		}
		var rev, at string
		modified := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if rev != "" {
			vcs = append(vcs, "revision "+rev[:min(len(rev), 12)])
			if at != "" {
				vcs = append(vcs, at)
			}
			if modified {
				vcs = append(vcs, "modified")
			}
			revision = strings.Join(vcs, ", ")
		}
	}
	return fmt.Sprintf("cleanroom %s (%s) %s %s/%s", version, revision, goVersion, runtime.GOOS, runtime.GOARCH)
}

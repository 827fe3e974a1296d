package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// buildVersion describes this binary from the build information Go records
// in it: the module version (a tag, a pseudo-version, or "(devel)" for a
// build from a work tree), the VCS revision and time when the build recorded
// them, and the Go version.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "sharelog (no build information)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sharelog %s", bi.Main.Version)
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		fmt.Fprintf(&b, "\nrevision %s", rev)
		if settings["vcs.modified"] == "true" {
			b.WriteString(" (modified)")
		}
		if t := settings["vcs.time"]; t != "" {
			fmt.Fprintf(&b, " of %s", t)
		}
	}
	fmt.Fprintf(&b, "\n%s %s/%s", bi.GoVersion, settings["GOOS"], settings["GOARCH"])
	return b.String()
}

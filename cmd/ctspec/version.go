package main

import (
	"runtime/debug"
	"strings"
)

// followsString names the conntrack release whose behaviour ctspec
// follows, in conntrack's own -V words.
const followsString = versionString

// ctspecVersion is what -V and --version print: ctspec's own version
// and the conntrack release it follows, so that a bug report names the
// program that was run. Every other message keeps conntrack's words.
func ctspecVersion() string {
	return "ctspec " + buildVersion(debug.ReadBuildInfo()) + " (follows " + followsString + ")"
}

// buildVersion is the main module's version from its build info: the
// module version when there is one (a tagged or pseudo version, which go
// build also derives from a checkout), else the VCS revision with
// "+dirty" when the checkout was modified, else "(devel)".
func buildVersion(info *debug.BuildInfo, ok bool) string {
	if !ok || info == nil {
		return "(devel)"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	var modified bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return "(devel)"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	var b strings.Builder
	b.WriteString(rev)
	if modified {
		b.WriteString("+dirty")
	}
	return b.String()
}

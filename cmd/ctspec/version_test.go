package main

import (
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/ctspec/ctspec/internal/nstest"
)

func TestBuildVersion(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "3ea81c9d84254da969d7625b1d206ba591970148"
	for _, tt := range []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{name: "no build info", want: "(devel)"},
		{name: "module version", ok: true, info: &debug.BuildInfo{Main: debug.Module{Version: "v0.3.1"}, Settings: vcs(rev, "true")}, want: "v0.3.1"},
		{name: "pseudo version", ok: true, info: &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261203150136-3ea81c9d8425+dirty"}}, want: "v0.0.0-20261203150136-3ea81c9d8425+dirty"},
		{name: "clean checkout", ok: true, info: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "false")}, want: "3ea81c9d8425"},
		{name: "modified checkout", ok: true, info: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "true")}, want: "3ea81c9d8425+dirty"},
		{name: "nothing known", ok: true, info: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, want: "(devel)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := buildVersion(tt.info, tt.ok); got != tt.want {
				t.Errorf("buildVersion = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestVersionOption checks that -V and --version name ctspec with the
// version go version -m reads from the binary, and the release of
// conntrack(8) installed here, whose -V line ctspec follows.
func TestVersionOption(t *testing.T) {
	needConntrack(t)
	bin := ctspecBin(t)
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	version, rev, modified := "", "", false
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "mod":
			version = f[2]
		case len(f) == 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision="):
			rev = strings.TrimPrefix(f[1], "vcs.revision=")
		case len(f) == 2 && f[0] == "build" && f[1] == "vcs.modified=true":
			modified = true
		}
	}
	if version == "(devel)" && rev != "" {
		version = rev[:12]
		if modified {
			version += "+dirty"
		}
	}
	ns := nstest.New(t)
	ct := runIn(t, ns, "", "conntrack", "-V")
	for _, opt := range []string{"-V", "--version", "--vers"} {
		got := runIn(t, ns, "", bin, opt)
		want := result{stdout: "ctspec " + version + " (follows " + strings.TrimSuffix(ct.stdout, "\n") + ")\n", status: ct.status}
		if got != want {
			t.Errorf("ctspec %s = %+v, want %+v", opt, got, want)
		}
	}
}

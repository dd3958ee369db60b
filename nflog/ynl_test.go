package nflog

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"testing"

	"github.com/ctspec/ctspec/internal/nstest"
)

// TestYNLNames reads spec/nflog.yaml with tools/ynlpy, a Python consumer of
// netlink-raw specs that works as the kernel's YNL tooling does, and checks
// that it gives every attribute the value the generated constants have:
// the packet attributes are listed out of numeric order, with explicit
// values.
func TestYNLNames(t *testing.T) {
	python := ""
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(p, "-c", "import yaml").Run() == nil {
			python = p
			break
		}
	}
	if python == "" {
		nstest.SkipOrFail(t, "no python3 with PyYAML (Debian: python3-yaml)")
		return
	}
	check := func(set string, name func(uint16) string, n int) {
		cmd := exec.Command(python, "ynlpy.py", "--spec", "../../spec/nflog.yaml", "--names", set)
		cmd.Dir = "../tools/ynlpy"
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("ynlpy --names %s: %v", set, err)
		}
		var names struct {
			Attributes map[string]string `json:"attributes"`
		}
		if err := json.Unmarshal(out, &names); err != nil {
			t.Fatal(err)
		}
		if len(names.Attributes) != n {
			t.Errorf("%s: ynlpy lists %d attributes, want %d", set, len(names.Attributes), n)
		}
		for v, ynl := range names.Attributes {
			num, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			if got := name(uint16(num)); got != ynl {
				t.Errorf("%s: value %d is %s for ynlpy, %s for the generated code", set, num, ynl, got)
			}
		}
	}
	check("packet-msg-attrs", func(v uint16) string { return PacketMsgAttr(v).String() }, 21)
	check("vlan-attrs", func(v uint16) string { return VlanAttr(v).String() }, 2)
	check("config-msg-attrs", func(v uint16) string { return ConfigMsgAttr(v).String() }, 6)
}

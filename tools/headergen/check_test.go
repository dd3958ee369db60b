package main

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheck(t *testing.T) {
	// at names a header line by its content: "<include>/linux/netfilter/<file>:<line>".
	type at func(file, needle string) string
	tests := []struct {
		name    string
		base    string
		edits   []edit
		verbose bool
		want    func(hdr at, spec func(needle string) int) []string
	}{
		{
			name: "old headers match the spec",
			base: "old",
		},
		{
			name: "new headers add an attribute and a status bit",
			base: "new",
			want: func(hdr at, _ func(string) int) []string {
				return []string{
					hdr("nf_conntrack_common.h", "IPS_FOO =") + ": IPS_FOO = 0x80: missing from spec definition nf-ct-status",
					hdr("nfnetlink_conntrack.h", "CTA_FOO_BAR") + ": CTA_FOO_BAR = 27: missing from spec set conntrack-attrs",
				}
			},
		},
		{
			name:  "attribute value differs",
			base:  "old",
			edits: []edit{{"spec.yaml", "        name: tuple-zone\n", "        name: tuple-zone\n        value: 4\n"}},
			want: func(hdr at, spec func(string) int) []string {
				return []string{fmt.Sprintf("%s: CTA_TUPLE_ZONE = 3: spec says value 4 (set tuple-attrs, line %d)", hdr("nfnetlink_conntrack.h", "CTA_TUPLE_ZONE"), spec("name: tuple-zone"))}
			},
		},
		{
			name:  "flag named differently",
			base:  "old",
			edits: []edit{{"spec.yaml", "name: seq-adjust", "name: seq-adjusted"}},
			want: func(hdr at, spec func(string) int) []string {
				return []string{fmt.Sprintf("%s: IPS_SEQ_ADJUST = 0x40: spec says name IPS_SEQ_ADJUSTED (definition nf-ct-status, line %d)", hdr("nf_conntrack_common.h", "IPS_SEQ_ADJUST ="), spec("name: seq-adjusted"))}
			},
		},
		{
			name:  "a set lists every alias",
			base:  "old",
			edits: []edit{{"spec.yaml", "      -\n        name: nat\n        type: binary\n        value: 6\n        doc: Deprecated alias of nat-src.\n", ""}},
			want: func(hdr at, _ func(string) int) []string {
				return []string{hdr("nfnetlink_conntrack.h", "#define CTA_NAT") + ": CTA_NAT = 6: missing from spec set conntrack-attrs"}
			},
		},
		{
			name:  "a definition may use any name of an alias group",
			base:  "old",
			edits: []edit{{"spec.yaml", "      - syn-sent2\n", "      - listen\n"}},
		},
		{
			name:  "a new alias of a listed definition value needs nothing",
			base:  "old",
			edits: []edit{{"nf_conntrack_tcp.h", "#define TCP_CONNTRACK_SYN_SENT2\tTCP_CONNTRACK_LISTEN\n", "#define TCP_CONNTRACK_SYN_SENT2\tTCP_CONNTRACK_LISTEN\n#define TCP_CONNTRACK_SYN_SENT3\tTCP_CONNTRACK_LISTEN\n"}},
		},
		{
			name:  "operation missing",
			base:  "old",
			edits: []edit{{"spec.yaml", "    -\n      name: exp-get\n      doc: Get or dump expectations.\n      attribute-set: conntrack-attrs\n      do:\n        request:\n          value: 0x201\n", ""}},
			want: func(hdr at, _ func(string) int) []string {
				return []string{hdr("nfnetlink_conntrack.h", "IPCTNL_MSG_EXP_GET") + ": IPCTNL_MSG_EXP_GET = 0x201: missing from spec operations"}
			},
		},
		{
			name:  "operation value differs",
			base:  "old",
			edits: []edit{{"spec.yaml", "value: 0x100", "value: 0x103"}},
			want: func(hdr at, spec func(string) int) []string {
				return []string{fmt.Sprintf("%s: IPCTNL_MSG_CT_NEW = 0x100: spec says value 0x103 (operations, line %d)", hdr("nfnetlink_conntrack.h", "IPCTNL_MSG_CT_NEW"), spec("name: new"))}
			},
		},
		{
			name:  "group value differs",
			base:  "old",
			edits: []edit{{"spec.yaml", "name: conntrack-destroy\n      value: 3", "name: conntrack-destroy\n      value: 7"}},
			want: func(hdr at, spec func(string) int) []string {
				return []string{fmt.Sprintf("%s: NFNLGRP_CONNTRACK_DESTROY = 3: spec says value 7 (mcast-groups, line %d)", hdr("nfnetlink.h", "\tNFNLGRP_CONNTRACK_DESTROY,"), spec("name: conntrack-destroy"))}
			},
		},
		{
			name:  "const value differs",
			base:  "old",
			edits: []edit{{"spec.yaml", "    value: 1\n", "    value: 3\n"}},
			want: func(hdr at, spec func(string) int) []string {
				return []string{fmt.Sprintf("%s: NFNL_SUBSYS_CTNETLINK = 1: spec says value 3 (definition nfnl-subsys-ctnetlink, line %d)", hdr("nfnetlink.h", "NFNL_SUBSYS_CTNETLINK\t"), spec("name: nfnl-subsys-ctnetlink"))}
			},
		},
		{
			name:  "#define flag missing",
			base:  "old",
			edits: []edit{{"nf_conntrack_tcp.h", "0x08\n", "0x08\n\n/* Fixture only */\n#define IP_CT_TCP_FLAG_SPARE\t\t0x10\n"}},
			want: func(hdr at, _ func(string) int) []string {
				return []string{hdr("nf_conntrack_tcp.h", "IP_CT_TCP_FLAG_SPARE") + ": IP_CT_TCP_FLAG_SPARE = 0x10: missing from spec definition nf-ct-tcp-flags"}
			},
		},
		{
			name:  "#define flag outside the name-prefix but in the same block",
			base:  "old",
			edits: []edit{{"nf_conntrack_tcp.h", "0x08\n", "0x08\n#define IP_CT_EXP_OTHER\t\t0x10\n"}},
			want: func(hdr at, _ func(string) int) []string {
				return []string{hdr("nf_conntrack_tcp.h", "IP_CT_EXP_OTHER") + ": IP_CT_EXP_OTHER = 0x10: missing from spec definition nf-ct-tcp-flags"}
			},
		},
		{
			name:  "#define of another definition's prefix in the same block belongs to it",
			base:  "old",
			edits: []edit{{"nf_conntrack_tcp.h", "0x08\n", "0x08\n#define TCP_CONNTRACK_FIXTURE\t\t0x10\n"}},
		},
		{
			name:  "#define bound above the flags is optional",
			base:  "old",
			edits: []edit{{"nf_conntrack_tcp.h", "0x08\n", "0x08\n#define IP_CT_TCP_FLAG_MAX\t\t0x10\n"}},
		},
		{
			name:  "enum of the uapi-header without a spec set",
			base:  "old",
			edits: []edit{{"nfnetlink_conntrack.h", "#endif", "enum ctattr_extra {\n\tCTA_EXTRA_UNSPEC,\n\tCTA_EXTRA_A,\n\t__CTA_EXTRA_MAX\n};\n\n#endif"}},
			want: func(hdr at, _ func(string) int) []string {
				return []string{hdr("nfnetlink_conntrack.h", "enum ctattr_extra") + ": enum ctattr_extra: no spec set or definition has enum-name ctattr-extra"}
			},
		},
		{
			name:  "attribute still marked TODO",
			base:  "old",
			edits: []edit{{"spec.yaml", "doc: Dump filter.", "doc: 'TODO(headergen): set the type from nf_conntrack_netlink.c'"}},
			want: func(_ at, spec func(string) int) []string {
				return []string{fmt.Sprintf("SPEC:%d: conntrack-attrs.filter: TODO(headergen): set the type from nf_conntrack_netlink.c", spec("name: filter"))}
			},
		},
		{
			name:  "header that does not parse",
			base:  "old",
			edits: []edit{{"nfnetlink_conntrack.h", "\tCTA_ZONE,", "\tCTA_ZONE = NOPE,"}},
			want: func(hdr at, _ func(string) int) []string {
				return []string{hdr("nfnetlink_conntrack.h", "CTA_ZONE") + ": CTA_ZONE: cannot evaluate NOPE: unknown name NOPE"}
			},
		},
		{
			name:    "verbose lists spec entries the headers lack",
			base:    "old",
			verbose: true,
			edits:   []edit{{"spec.yaml", "        doc: Mask of the status bits.\n", "        doc: Mask of the status bits.\n      -\n        name: timestamp-event\n        type: u64\n        byte-order: big-endian\n        doc: Event time.\n"}},
			want: func(_ at, spec func(string) int) []string {
				return []string{
					fmt.Sprintf("note: SPEC:%d: CTA_TIMESTAMP_EVENT = 27 (set conntrack-attrs): not in the headers", spec("name: timestamp-event")),
					"note: compared 9 spec containers with 4 headers under INCLUDE",
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specPath, include := fixture(t, tt.base, tt.edits...)
			args := []string{"check", "-spec", specPath, "-include", include}
			if tt.verbose {
				args = append(args, "-v")
			}
			stdout, _, err := runTool(args...)
			var want []string
			if tt.want != nil {
				hdr := func(file, needle string) string {
					path := filepath.Join(include, "linux", "netfilter", file)
					return fmt.Sprintf("%s:%d", path, lineOf(t, path, needle))
				}
				spec := func(needle string) int { return lineOf(t, specPath, needle) }
				want = tt.want(hdr, spec)
				for i := range want {
					want[i] = replacer(specPath, include).Replace(want[i])
				}
			}
			if diff := cmp.Diff(want, lines(stdout)); diff != "" {
				t.Errorf("check output (-want +got):\n%s", diff)
			}
			problems := 0
			for _, l := range want {
				if len(l) < 5 || l[:5] != "note:" {
					problems++
				}
			}
			switch {
			case problems == 0 && err != nil:
				t.Errorf("check failed: %v", err)
			case problems > 0 && err == nil:
				t.Errorf("check passed, want it to fail")
			case problems > 0:
				want := fmt.Sprintf("check: %d %s between %s and the headers in %s", problems, plural(problems, "difference"), specPath, include)
				if err.Error() != want {
					t.Errorf("error = %q, want %q", err, want)
				}
			}
		})
	}
}

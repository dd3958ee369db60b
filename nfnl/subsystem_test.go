package nfnl

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
)

func TestType(t *testing.T) {
	tests := []struct {
		name string
		s    Subsystem
		msg  uint8
		want netlink.HeaderType
	}{
		{name: "none", s: SubsysNone, msg: 0, want: 0x0000},
		{name: "batch begin", s: SubsysNone, msg: 0x10, want: MsgBatchBegin},
		{name: "batch end", s: SubsysNone, msg: 0x11, want: MsgBatchEnd},
		{name: "subsystem 1 message 0", s: SubsysCTNetlink, msg: 0, want: 0x0100},
		{name: "subsystem 1 message 1", s: SubsysCTNetlink, msg: 1, want: 0x0101},
		{name: "nftables", s: SubsysNFTables, msg: 0x0a, want: 0x0a0a},
		{name: "all ones", s: 0xff, msg: 0xff, want: 0xffff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Type(tt.s, tt.msg)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("unexpected Type (-want +got):\n%s", diff)
			}
			s, msg := SplitType(got)
			if diff := cmp.Diff([2]uint8{uint8(tt.s), tt.msg}, [2]uint8{uint8(s), msg}); diff != "" {
				t.Fatalf("unexpected SplitType (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSplitTypeControl(t *testing.T) {
	tests := []struct {
		name string
		t    netlink.HeaderType
		s    Subsystem
		msg  uint8
	}{
		{name: "NLMSG_ERROR", t: netlink.Error, s: SubsysNone, msg: 2},
		{name: "NLMSG_DONE", t: netlink.Done, s: SubsysNone, msg: 3},
		{name: "high byte only", t: 0x0c00, s: SubsysHook, msg: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, msg := SplitType(tt.t)
			if diff := cmp.Diff([2]uint8{uint8(tt.s), tt.msg}, [2]uint8{uint8(s), msg}); diff != "" {
				t.Fatalf("unexpected SplitType (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSubsystemValues(t *testing.T) {
	// The values of linux/netfilter/nfnetlink.h, which x/sys must agree with.
	tests := []struct {
		name string
		s    Subsystem
		want uint8
		str  string
	}{
		{name: "NFNL_SUBSYS_NONE", s: SubsysNone, want: 0, str: "none"},
		{name: "NFNL_SUBSYS_CTNETLINK", s: SubsysCTNetlink, want: 1, str: "ctnetlink"},
		{name: "NFNL_SUBSYS_CTNETLINK_EXP", s: SubsysCTNetlinkExp, want: 2, str: "ctnetlink_exp"},
		{name: "NFNL_SUBSYS_QUEUE", s: SubsysQueue, want: 3, str: "queue"},
		{name: "NFNL_SUBSYS_ULOG", s: SubsysULog, want: 4, str: "ulog"},
		{name: "NFNL_SUBSYS_OSF", s: SubsysOSF, want: 5, str: "osf"},
		{name: "NFNL_SUBSYS_IPSET", s: SubsysIPSet, want: 6, str: "ipset"},
		{name: "NFNL_SUBSYS_ACCT", s: SubsysAcct, want: 7, str: "acct"},
		{name: "NFNL_SUBSYS_CTNETLINK_TIMEOUT", s: SubsysCTNetlinkTimeout, want: 8, str: "ctnetlink_timeout"},
		{name: "NFNL_SUBSYS_CTHELPER", s: SubsysCTHelper, want: 9, str: "cthelper"},
		{name: "NFNL_SUBSYS_NFTABLES", s: SubsysNFTables, want: 10, str: "nftables"},
		{name: "NFNL_SUBSYS_NFT_COMPAT", s: SubsysNFTCompat, want: 11, str: "nft_compat"},
		{name: "NFNL_SUBSYS_HOOK", s: SubsysHook, want: 12, str: "hook"},
		{name: "NFNL_SUBSYS_COUNT", s: SubsysCount, want: 13, str: "Subsystem(13)"},
		{name: "unknown", s: 200, want: 200, str: "Subsystem(200)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, uint8(tt.s)); diff != "" {
				t.Fatalf("unexpected value (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.str, tt.s.String()); diff != "" {
				t.Fatalf("unexpected String (-want +got):\n%s", diff)
			}
		})
	}
}

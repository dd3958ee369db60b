package nfnl

import (
	"strconv"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// A Subsystem is an nfnetlink subsystem id, the high byte of an nfnetlink
// message type. The ids come from linux/netfilter/nfnetlink.h.
type Subsystem uint8

const (
	// SubsysNone is the id of no subsystem. Netlink control messages and the
	// batch markers carry it.
	SubsysNone Subsystem = unix.NFNL_SUBSYS_NONE // NFNL_SUBSYS_NONE
	// SubsysCTNetlink is the id of ctnetlink.
	SubsysCTNetlink Subsystem = unix.NFNL_SUBSYS_CTNETLINK // NFNL_SUBSYS_CTNETLINK
	// SubsysCTNetlinkExp is the id of ctnetlink's expectation messages.
	SubsysCTNetlinkExp Subsystem = unix.NFNL_SUBSYS_CTNETLINK_EXP // NFNL_SUBSYS_CTNETLINK_EXP
	// SubsysQueue is the id of nfnetlink_queue.
	SubsysQueue Subsystem = unix.NFNL_SUBSYS_QUEUE // NFNL_SUBSYS_QUEUE
	// SubsysULog is the id of nfnetlink_log.
	SubsysULog Subsystem = unix.NFNL_SUBSYS_ULOG // NFNL_SUBSYS_ULOG
	// SubsysOSF is the id of the passive OS fingerprinting match.
	SubsysOSF Subsystem = unix.NFNL_SUBSYS_OSF // NFNL_SUBSYS_OSF
	// SubsysIPSet is the id of ipset.
	SubsysIPSet Subsystem = unix.NFNL_SUBSYS_IPSET // NFNL_SUBSYS_IPSET
	// SubsysAcct is the id of nfnetlink_acct.
	SubsysAcct Subsystem = unix.NFNL_SUBSYS_ACCT // NFNL_SUBSYS_ACCT
	// SubsysCTNetlinkTimeout is the id of cttimeout.
	SubsysCTNetlinkTimeout Subsystem = unix.NFNL_SUBSYS_CTNETLINK_TIMEOUT // NFNL_SUBSYS_CTNETLINK_TIMEOUT
	// SubsysCTHelper is the id of nfnetlink_cthelper.
	SubsysCTHelper Subsystem = unix.NFNL_SUBSYS_CTHELPER // NFNL_SUBSYS_CTHELPER
	// SubsysNFTables is the id of nf_tables. It accepts batches.
	SubsysNFTables Subsystem = unix.NFNL_SUBSYS_NFTABLES // NFNL_SUBSYS_NFTABLES
	// SubsysNFTCompat is the id of nft_compat.
	SubsysNFTCompat Subsystem = unix.NFNL_SUBSYS_NFT_COMPAT // NFNL_SUBSYS_NFT_COMPAT
	// SubsysHook is the id of the netfilter hook dump.
	SubsysHook Subsystem = unix.NFNL_SUBSYS_HOOK // NFNL_SUBSYS_HOOK
	// SubsysCount is the number of subsystem ids in the kernel headers that
	// golang.org/x/sys was generated from. It is not a subsystem, and newer
	// kernels may define more ids.
	SubsysCount Subsystem = unix.NFNL_SUBSYS_COUNT // NFNL_SUBSYS_COUNT
)

// subsystemNames holds the kernel names of the subsystems without the
// NFNL_SUBSYS_ prefix, in lower case.
var subsystemNames = [...]string{
	SubsysNone:             "none",
	SubsysCTNetlink:        "ctnetlink",
	SubsysCTNetlinkExp:     "ctnetlink_exp",
	SubsysQueue:            "queue",
	SubsysULog:             "ulog",
	SubsysOSF:              "osf",
	SubsysIPSet:            "ipset",
	SubsysAcct:             "acct",
	SubsysCTNetlinkTimeout: "ctnetlink_timeout",
	SubsysCTHelper:         "cthelper",
	SubsysNFTables:         "nftables",
	SubsysNFTCompat:        "nft_compat",
	SubsysHook:             "hook",
}

// String returns the kernel name of s without the NFNL_SUBSYS_ prefix, in lower
// case, such as "ctnetlink", or "Subsystem(n)" for an id it does not know.
func (s Subsystem) String() string {
	if int(s) < len(subsystemNames) {
		return subsystemNames[s]
	}
	return "Subsystem(" + strconv.Itoa(int(s)) + ")"
}

const (
	// MsgBatchBegin is the message type that opens a batch. It equals
	// NLMSG_MIN_TYPE, the first type that is not a netlink control message.
	MsgBatchBegin netlink.HeaderType = unix.NFNL_MSG_BATCH_BEGIN // NFNL_MSG_BATCH_BEGIN
	// MsgBatchEnd is the message type that closes a batch.
	MsgBatchEnd netlink.HeaderType = unix.NFNL_MSG_BATCH_END // NFNL_MSG_BATCH_END
)

// Type packs a subsystem id and a message type of that subsystem into a
// netlink message type: s in the high byte, msg in the low byte.
func Type(s Subsystem, msg uint8) netlink.HeaderType {
	return netlink.HeaderType(uint16(s)<<8 | uint16(msg))
}

// SplitType unpacks a netlink message type into its subsystem id and the
// message type within that subsystem. It is the inverse of [Type].
func SplitType(t netlink.HeaderType) (Subsystem, uint8) {
	return Subsystem(uint16(t) >> 8), uint8(t)
}

package nflog

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/nfnl"
)

// Config configures a Conn; it is nfnl's. A nil *Config means all defaults:
// the calling thread's network namespace. Its ReadBuffer is not used: each
// group's socket takes GroupConfig.ReadBuffer.
type Config = nfnl.Config

// Conn is a client of nflog in one network namespace.
//
// A Conn is safe for concurrent use by multiple goroutines; each group it
// binds has a socket of its own.
type Conn struct {
	nl *nfnl.Conn
}

// Dial opens a Conn. A missing privilege or namespace shows up here.
func Dial(cfg *Config) (*Conn, error) {
	c, err := nfnl.Dial(cfg)
	if err != nil {
		return nil, fmt.Errorf("nflog: %w", err)
	}
	return &Conn{nl: c}, nil
}

// Close closes the Conn. Groups it bound stay bound until they are closed.
func (c *Conn) Close() error { return c.nl.Close() }

// Size is a number of bytes.
type Size int

// Sizes.
const (
	KiB Size = 1 << 10
	MiB Size = 1 << 20
)

// Limits of the kernel (net/netfilter/nfnetlink_log.c).
const (
	// MaxCopyRange is the most bytes of a packet the kernel copies
	// (NFULNL_COPY_RANGE_MAX, 0xffff - NLA_HDRLEN).
	MaxCopyRange = 0xffff - 4
	// MinKernelBuffer and MaxKernelBuffer bound GroupConfig.KernelBuffer.
	// The kernel accepts NLMSG_GOODSIZE (a page less the skb overhead) to
	// 128 KiB and ignores any other value without an error, so Bind checks
	// it; MinKernelBuffer is above NLMSG_GOODSIZE on pages up to 8 KiB.
	MinKernelBuffer Size = 8 * KiB
	MaxKernelBuffer Size = 128 * KiB
	// flushUnit is the unit of the kernel's flush timeout.
	flushUnit = 10 * time.Millisecond
)

// GroupConfig is the configuration of a bound group. The zero value is the
// kernel's defaults: whole packets, a flush timeout of one second, a queue
// threshold of 100 packets, the socket's default receive buffer, no flags.
type GroupConfig struct {
	// CopyMode is what the kernel copies of each packet: CopyModePacket,
	// the default, copies the metadata and up to CopyRange bytes of the
	// packet; CopyModeMeta copies the metadata only. CopyModeNone, the zero
	// value, means the default (the kernel treats none as meta).
	CopyMode CopyMode
	// CopyRange is the most bytes of each packet to copy with
	// CopyModePacket, from its network header. 0 means MaxCopyRange. A
	// rule may copy less (iptables --nflog-size, nftables snaplen).
	CopyRange int
	// ReadBuffer is the socket's receive buffer. 0 keeps the kernel's
	// default (net.core.rmem_default, often 208 KiB); a bound group sets it
	// with SO_RCVBUFFORCE, which needs CAP_NET_ADMIN and ignores
	// net.core.rmem_max, or else SO_RCVBUF, which the kernel caps at
	// rmem_max. Thousands of packets per second need megabytes.
	ReadBuffer Size
	// KernelBuffer is the size of the kernel's buffer that collects packets
	// before it sends them in one datagram, from MinKernelBuffer to
	// MaxKernelBuffer. 0 keeps the kernel's default, NLMSG_GOODSIZE.
	KernelBuffer Size
	// QueueThreshold is how many packets the kernel collects before it
	// sends them in one datagram. 0 keeps the kernel's default of 100. A
	// rule's own threshold wins when it is lower, and iptables' NFLOG
	// target sets 1 unless --nflog-threshold is given.
	QueueThreshold uint32
	// FlushTimeout is the longest the kernel holds a packet before it
	// sends what it collected, in steps of 10 ms (rounded up). 0 keeps the
	// kernel's default of one second.
	FlushTimeout time.Duration
	// Flags add attributes to every packet: ConfigFlagsSeq and
	// ConfigFlagsSeqGlobal sequence numbers, ConfigFlagsConntrack the
	// packet's conntrack entry (which needs a kernel built with
	// CONFIG_NETFILTER_NETLINK_GLUE_CT, else Bind fails with EOPNOTSUPP).
	Flags ConfigFlags
	// Family is the nfgenmsg family of the bind request. The kernel
	// ignores it for binds; 0 means AF_UNSPEC.
	Family uint8
}

// ErrGroupBusy is matched by the error of Bind when another socket holds
// the group (the kernel answers EPERM).
var ErrGroupBusy = errors.New("group busy: another socket holds it")

// validFlags are the flags the kernel knows.
const validFlags = ConfigFlagsSeq | ConfigFlagsSeqGlobal | ConfigFlagsConntrack

// configRequest returns the attributes of the bind request for cfg.
func configRequest(cfg *GroupConfig) ([]byte, error) {
	var m ConfigMsg
	m.SetCmd(ConfigCmd{Command: ConfigCmdsBind})
	mode := cfg.CopyMode
	if mode == CopyModeNone {
		// The zero value means the kernel's default.
		mode = CopyModePacket
	}
	switch mode {
	case CopyModeMeta:
		if cfg.CopyRange != 0 {
			return nil, fmt.Errorf("copy range %d with copy mode %s: a range needs copy mode packet", cfg.CopyRange, mode)
		}
	case CopyModePacket:
		if cfg.CopyRange < 0 || cfg.CopyRange > MaxCopyRange {
			return nil, fmt.Errorf("copy range %d: want 0 to %d bytes", cfg.CopyRange, MaxCopyRange)
		}
	default:
		return nil, fmt.Errorf("copy mode %d: want meta or packet", uint8(mode))
	}
	m.SetMode(ConfigMode{CopyRange: uint32(cfg.CopyRange), CopyMode: mode})
	if cfg.KernelBuffer != 0 {
		if cfg.KernelBuffer < MinKernelBuffer || cfg.KernelBuffer > MaxKernelBuffer {
			return nil, fmt.Errorf("kernel buffer %d bytes: want %d to %d", cfg.KernelBuffer, MinKernelBuffer, MaxKernelBuffer)
		}
		m.SetNlbufsiz(uint32(cfg.KernelBuffer))
	}
	if cfg.ReadBuffer < 0 {
		return nil, fmt.Errorf("read buffer %d bytes: want 0 or more", cfg.ReadBuffer)
	}
	if cfg.QueueThreshold != 0 {
		m.SetQthresh(cfg.QueueThreshold)
	}
	if cfg.FlushTimeout != 0 {
		if cfg.FlushTimeout < 0 || cfg.FlushTimeout > (1<<32-1)*flushUnit {
			return nil, fmt.Errorf("flush timeout %v: want 10ms to %v", cfg.FlushTimeout, (1<<32-1)*flushUnit)
		}
		m.SetTimeout(uint32((cfg.FlushTimeout + flushUnit - 1) / flushUnit))
	}
	if cfg.Flags&^validFlags != 0 {
		return nil, fmt.Errorf("flags %s: unknown bits %#x", cfg.Flags, uint16(cfg.Flags&^validFlags))
	}
	if cfg.Flags != 0 {
		m.SetFlags(cfg.Flags)
	}
	return m.AppendAttributes(nil), nil
}

// msgPacket is the nlmsg_type of a logged packet.
var msgPacket = uint16(nfnl.Type(nfnl.SubsysULog, uint8(NfulnlMsgTypesPacket)))

// Group is a bound log group: a socket of its own that receives the
// packets rules log to the group.
//
// A Group is not safe for concurrent use, except that Close, Overruns and
// Drops may be called from any goroutine at any time; Close ends a running
// iteration of Packets.
type Group struct {
	num      uint16
	s        *nfnl.Socket
	overruns atomic.Uint64
	closeMu  sync.Mutex
	closed   bool
	pkt      Packet
	// lastPrefix is the prefix of the last packet, reused while it stays.
	lastPrefix string
	// datagrams counts the datagrams Packets received; msg is the packet
	// message last decoded, nfgenmsg included.
	datagrams int
	msg       []byte
	// rest is what is left of the last datagram: an iteration that stops
	// in the middle of a batch leaves the next packets to the next one.
	rest []byte
}

// Bind binds group num to a new socket and configures it with cfg (nil
// means the kernel's defaults), in one request. The group stays bound until
// Close. Binding a group another socket holds fails with an error matching
// ErrGroupBusy and unix.EPERM.
func (c *Conn) Bind(ctx context.Context, num uint16, cfg *GroupConfig) (*Group, error) {
	if cfg == nil {
		cfg = &GroupConfig{}
	}
	attrs, err := configRequest(cfg)
	if err != nil {
		return nil, fmt.Errorf("nflog: bind group %d: %w", num, err)
	}
	s, err := nfnl.DialSocket(&nfnl.SocketConfig{NetNS: c.nl.NetNS(), ReadBuffer: int(cfg.ReadBuffer)})
	if err != nil {
		return nil, fmt.Errorf("nflog: bind group %d: %w", num, err)
	}
	err = s.Request(ctx, nfnl.Req{
		Type:       netlink.HeaderType(MsgConfig),
		Flags:      nfnl.Acknowledge,
		Family:     cfg.Family,
		ResourceID: num,
		Attrs:      func(b []byte) []byte { return append(b, attrs...) },
	}, nil)
	if err != nil {
		s.Close()
		return nil, bindError(num, err)
	}
	return &Group{num: num, s: s}, nil
}

// bindError names the operation and explains the errors callers meet most.
func bindError(num uint16, err error) error {
	switch {
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("nflog: bind group %d: %w (%w)", num, ErrGroupBusy, err)
	case errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("nflog: bind group %d: conntrack flag, but the kernel cannot add conntrack entries to logged packets (CONFIG_NETFILTER_NETLINK_GLUE_CT): %w", num, err)
	}
	return fmt.Errorf("nflog: bind group %d: %w", num, err)
}

// Num returns the group's number.
func (g *Group) Num() uint16 { return g.num }

// Overruns returns how many times the socket's receive buffer overflowed
// (ENOBUFS) while Packets ran; the kernel dropped packets each time.
func (g *Group) Overruns() uint64 { return g.overruns.Load() }

// Drops returns the kernel's count of messages it could not queue on the
// group's socket (SO_MEMINFO, Linux 4.12 and later); it wraps at 2^32.
func (g *Group) Drops() (uint32, error) {
	n, err := g.s.Drops()
	if err != nil {
		return 0, fmt.Errorf("nflog: group %d: drops: %w", g.num, err)
	}
	return n, nil
}

// ReadBuffer returns the receive buffer the kernel granted the socket, as
// SO_RCVBUF reports it (twice the size asked for).
func (g *Group) ReadBuffer() (Size, error) {
	n, err := g.s.ReadBuffer()
	if err != nil {
		return 0, fmt.Errorf("nflog: group %d: read buffer: %w", g.num, err)
	}
	return Size(n), nil
}

// Close releases the group: it closes the socket, which unbinds the group
// in the kernel and ends a running iteration of Packets. It always
// returns; a second call returns nil.
func (g *Group) Close() error {
	g.closeMu.Lock()
	defer g.closeMu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	if err := g.s.Close(); err != nil {
		return fmt.Errorf("nflog: group %d: close: %w", g.num, err)
	}
	return nil
}

func (g *Group) isClosed() bool {
	g.closeMu.Lock()
	defer g.closeMu.Unlock()
	return g.closed
}

// Packets returns an iterator of the packets logged to the group. The
// *Packet is reused: it and its byte slices are valid until the next
// iteration (Clone keeps one). An overrun (ENOBUFS) is counted in Overruns
// and the iteration goes on; the kernel drops every packet for the group
// until the socket's queue is drained. The iteration ends with ctx's error
// when ctx ends, and with an error matching net.ErrClosed after Close; a
// malformed message is yielded as an error, and the iteration goes on if
// the loop continues.
func (g *Group) Packets(ctx context.Context) iter.Seq2[*Packet, error] {
	return func(yield func(*Packet, error) bool) {
		stop := g.s.Watch(ctx)
		defer stop()
		for {
			if err := ctx.Err(); err != nil {
				yield(nil, fmt.Errorf("nflog: group %d: receive: %w", g.num, err))
				return
			}
			if len(g.rest) == 0 {
				b, err := g.s.Receive(ctx, true)
				if errors.Is(err, unix.ENOBUFS) {
					g.overruns.Add(1)
					continue
				}
				if err != nil {
					if g.isClosed() {
						err = net.ErrClosed
					}
					yield(nil, fmt.Errorf("nflog: group %d: receive: %w", g.num, err))
					return
				}
				g.datagrams++
				g.rest = b
			}
			for len(g.rest) > 0 {
				h, data, rest, err := nfnl.NextMessage(g.rest)
				if err != nil {
					g.rest = nil
					if !yield(nil, fmt.Errorf("nflog: group %d: %w", g.num, err)) {
						return
					}
					break
				}
				g.rest = rest
				if uint16(h.Type) != msgPacket {
					// The NLMSG_DONE after a batch of packets.
					continue
				}
				if err := g.decode(data); err != nil {
					if !yield(nil, fmt.Errorf("nflog: group %d: packet: %w", g.num, err)) {
						return
					}
					continue
				}
				if !yield(&g.pkt, nil) {
					return
				}
			}
		}
	}
}

// decode decodes one packet message, nfgenmsg included, into g.pkt.
func (g *Group) decode(data []byte) error {
	hdr, attrs, err := nfnl.ParseHeader(data)
	if err != nil {
		return err
	}
	g.msg = data
	p := &g.pkt
	if err := p.decode(attrs, g.lastPrefix); err != nil {
		return err
	}
	p.Family, p.Group = hdr.Family, hdr.ResourceID
	g.lastPrefix = p.Prefix
	return nil
}

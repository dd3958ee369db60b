package nflog

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/nstest"
)

// sendFrame sends one Ethernet frame out of interface dev in ns through a
// packet socket.
func sendFrame(t *testing.T, ns *nstest.NS, dev string, frame []byte) {
	t.Helper()
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6, Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// ifIndex returns the index and address of interface dev in ns.
func ifIndex(t *testing.T, ns *nstest.NS, dev string) (uint32, net.HardwareAddr) {
	t.Helper()
	var ifi *net.Interface
	err := ns.Do(func() (err error) {
		ifi, err = net.InterfaceByName(dev)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return uint32(ifi.Index), ifi.HardwareAddr
}

// bridgeSetup makes veth0 and its peer veth1, a port of bridge br0, with
// IPv6 off so that nothing else crosses them.
func bridgeSetup(t *testing.T, ns *nstest.NS) {
	t.Helper()
	ns.Sysctl(t, "net.ipv6.conf.all.disable_ipv6", "1")
	ns.Sysctl(t, "net.ipv6.conf.default.disable_ipv6", "1")
	for _, cmd := range [][]string{
		{"link", "add", "veth0", "type", "veth", "peer", "name", "veth1"},
		{"link", "add", "br0", "type", "bridge"},
		{"link", "set", "veth1", "master", "br0"},
		{"link", "set", "veth0", "up"}, {"link", "set", "veth1", "up"}, {"link", "set", "br0", "up"},
	} {
		ns.Run(t, "ip", cmd...)
	}
}

var bridgePayload = []byte("nflog bridge test frame, 46 bytes at least...")

// bridgeFrame returns a broadcast frame from veth0 with an 802.1Q tag,
// priority 0, VLAN 5, which the receiving side moves out of the frame into
// the packet's metadata, and ethertype 0x88b5.
func bridgeFrame(t *testing.T, ns *nstest.NS) []byte {
	_, src := ifIndex(t, ns, "veth0")
	return append(append(append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, src...), 0x81, 0x00, 0x00, 0x05, 0x88, 0xb5), bridgePayload...)
}

// TestKernelBridge sends a broadcast frame tagged with VLAN 5 from veth0
// to its peer veth1, a port of bridge br0, and logs it at the bridge
// family's input hook with nftables: the bridge is the input device, the
// port the physical one, and the VLAN tag and link layer header come along.
func TestKernelBridge(t *testing.T) {
	nstest.RequireCommands(t, "ip", "nft")
	ns, c := kernelConn(t)
	bridgeSetup(t, ns)
	ns.Run(t, "nft", `add table bridge b
add chain bridge b in { type filter hook input priority 0; }
add rule bridge b in log group 22 prefix "br-in"`)
	g := bind(t, c, 22, nil)
	br, _ := ifIndex(t, ns, "br0")
	port, _ := ifIndex(t, ns, "veth1")
	_, src := ifIndex(t, ns, "veth0")
	payload := bridgePayload
	sendFrame(t, ns, "veth0", bridgeFrame(t, ns))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var p *Packet
	for q, err := range g.Packets(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(q.Payload, payload) {
			p = q.Clone()
			break
		}
	}
	if p.Family != unix.NFPROTO_BRIDGE || p.Hook != 1 || p.Prefix != "br-in" || p.HWProtocol != 0x88b5 {
		t.Errorf("family %d hook %d prefix %q hw protocol %#x, want 7, 1 (NF_BR_LOCAL_IN), br-in, 0x88b5", p.Family, p.Hook, p.Prefix, p.HWProtocol)
	}
	if p.InDev != br || p.PhysInDev != port || p.Has(PacketMsgAttrIfindexOutdev) {
		t.Errorf("indev %d physindev %d, want br0 %d, veth1 %d", p.InDev, p.PhysInDev, br, port)
	}
	if !p.Has(PacketMsgAttrVlan) || p.VLAN.Tci&0xfff != 5 || p.VLAN.Proto != 0x8100 {
		t.Errorf("vlan %+v present %v, want id 5, protocol 0x8100", p.VLAN, p.Has(PacketMsgAttrVlan))
	}
	wantL2 := append(append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, src...), 0x88, 0xb5)
	if !bytes.Equal(p.L2Header, wantL2) || p.HWAddr.String() != src.String() {
		t.Errorf("l2 header %x hwaddr %v, want %x, %v", p.L2Header, p.HWAddr, wantL2, src)
	}
	if p.HWType != unix.ARPHRD_ETHER || p.HWLen != 14 || binary.BigEndian.Uint16(p.HWHeader[12:]) != 0x88b5 {
		t.Errorf("hw type %d len %d header %x", p.HWType, p.HWLen, p.HWHeader)
	}
}

package ctnetlink

import (
	"context"
	"net/netip"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/internal/nstest"
)

// benchFlow is a fully populated flow as a dump returns it.
func benchFlow() *Flow {
	f := testFlow("192.0.2.1", "198.51.100.7", 43210, 443)
	f.SetStatus(StatusSeenReply | StatusAssured | StatusConfirmed)
	f.ProtoInfo.TCP.SetWScaleOriginal(7)
	f.ProtoInfo.TCP.SetWScaleReply(7)
	f.ProtoInfo.TCP.SetFlagsOriginal(TCPFlagsMask{Flags: 0x23, Mask: 0x23})
	f.ProtoInfo.TCP.SetFlagsReply(TCPFlagsMask{Flags: 0x23, Mask: 0x23})
	f.CountersOrig.SetPackets(12)
	f.CountersOrig.SetBytes(3400)
	f.CountersReply.SetPackets(10)
	f.CountersReply.SetBytes(120000)
	f.SetMark(1)
	f.SetUse(1)
	f.SetID(0xdeadbeef)
	f.Timestamp.SetStart(1700000000000000000)
	return f
}

func BenchmarkDecodeFlow(b *testing.B) {
	msgs := map[string][]byte{"synthetic-tcp4": benchFlow().AppendAttributes(nil)}
	for _, m := range goldenMessages(b) {
		if topSet(m.Type) == schemaFlow && len(m.Payload) > 4 {
			msgs[m.Name] = m.Payload[4:]
		}
	}
	for name, attrs := range msgs {
		b.Run(name, func(b *testing.B) {
			var f Flow
			b.ReportAllocs()
			b.SetBytes(int64(len(attrs)))
			for i := 0; i < b.N; i++ {
				if err := f.UnmarshalAttributes(attrs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	f := benchFlow()
	buf := make([]byte, 0, 4096)
	b.Run("create", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			buf = appendRequest(buf[:0], MsgNew, netlink.Create|netlink.Excl|netlink.Acknowledge, 1, unix.AF_INET, f.AppendAttributes)
		}
	})
	b.Run("update", func(b *testing.B) {
		var u Flow
		u.SetTupleOrig(f.TupleOrig)
		u.SetMark(9)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			buf = appendRequest(buf[:0], MsgNew, netlink.Acknowledge, 1, unix.AF_INET, u.AppendAttributes)
		}
	})
	b.Run("delete", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			k := lookupKey(f)
			buf = appendRequest(buf[:0], MsgDelete, netlink.Acknowledge, 1, unix.AF_INET, k.AppendAttributes)
		}
	})
}

// BenchmarkKernelDump dumps a table of 10,000 flows from the kernel: the raw
// receive of the same dump without decoding, the streaming Dump and List.
// The flows/s metrics of the three compare directly.
func BenchmarkKernelDump(b *testing.B) {
	ns := nstest.New(b)
	c, err := Dial(&Config{NetNS: ns.FD()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	const n = 10000
	if res, err := c.CreateMany(ctx, manyFlows(n)); err != nil || res.Done != n {
		b.Fatalf("fill: %+v %v", res, err)
	}
	report := func(b *testing.B, flows int) {
		b.ReportMetric(float64(flows)/b.Elapsed().Seconds(), "flows/s")
		b.ReportMetric(0, "ns/op")
	}
	b.Run("raw", func(b *testing.B) {
		s, err := c.get()
		if err != nil {
			b.Fatal(err)
		}
		defer c.put(s)
		b.ReportAllocs()
		total := 0
		for i := 0; i < b.N; i++ {
			got := 0
			if err := request(ctx, s, MsgGet, netlink.Dump, unix.AF_UNSPEC, nil, func(*reply) error { got++; return nil }); err != nil {
				b.Fatal(err)
			}
			if got != n {
				b.Fatalf("raw dump saw %d flows", got)
			}
			total += got
		}
		report(b, total)
	})
	b.Run("stream", func(b *testing.B) {
		b.ReportAllocs()
		total := 0
		for i := 0; i < b.N; i++ {
			for _, err := range c.Dump(ctx, nil) {
				if err != nil {
					b.Fatal(err)
				}
				total++
			}
		}
		report(b, total)
	})
	b.Run("list", func(b *testing.B) {
		b.ReportAllocs()
		total := 0
		for i := 0; i < b.N; i++ {
			flows, err := c.List(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			total += len(flows)
		}
		report(b, total)
	})
	_ = netip.Addr{}
}

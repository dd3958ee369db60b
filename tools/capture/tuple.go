package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
)

// The few ctnetlink attribute numbers the tool needs, from the kernel's
// include/uapi/linux/netfilter/nfnetlink_conntrack.h. The tool keeps its
// own copy so that it works before, and independently of, generated code.
const (
	ctaTupleOrig  = 1  // CTA_TUPLE_ORIG
	ctaLabels     = 22 // CTA_LABELS
	ctaLabelsMask = 23 // CTA_LABELS_MASK

	ctaTupleIP    = 1 // CTA_TUPLE_IP
	ctaTupleProto = 2 // CTA_TUPLE_PROTO

	ctaIPv4Src = 1 // CTA_IP_V4_SRC
	ctaIPv4Dst = 2 // CTA_IP_V4_DST
	ctaIPv6Src = 3 // CTA_IP_V6_SRC
	ctaIPv6Dst = 4 // CTA_IP_V6_DST

	ctaProtoNum     = 1 // CTA_PROTO_NUM
	ctaProtoSrcPort = 2 // CTA_PROTO_SRC_PORT
	ctaProtoDstPort = 3 // CTA_PROTO_DST_PORT

	ctaExpectMaster = 1 // CTA_EXPECT_MASTER
)

// flowKey identifies a flow by its original-direction tuple. Ports are zero
// for protocols without them.
type flowKey struct {
	proto        uint8
	src, dst     netip.Addr
	sport, dport uint16
}

func (k flowKey) String() string {
	return fmt.Sprintf("proto %d %s -> %s",
		k.proto, netip.AddrPortFrom(k.src, k.sport), netip.AddrPortFrom(k.dst, k.dport))
}

// family returns AF_INET or AF_INET6 for the key's addresses.
func (k flowKey) family() uint8 {
	if k.src.Is4() {
		return 2 // AF_INET
	}
	return 10 // AF_INET6
}

// nfgenmsgLen is the size of struct nfgenmsg, which precedes the attributes.
const nfgenmsgLen = 4

// flowTuple returns the tuple nested in the top-level attribute typ (such
// as CTA_TUPLE_ORIG or CTA_EXPECT_MASTER) of a ctnetlink message payload.
func flowTuple(payload []byte, typ uint16) (flowKey, error) {
	if len(payload) < nfgenmsgLen {
		return flowKey{}, fmt.Errorf("payload of %d bytes has no nfgenmsg", len(payload))
	}
	ad, err := netlink.NewAttributeDecoder(payload[nfgenmsgLen:])
	if err != nil {
		return flowKey{}, err
	}
	var (
		k     flowKey
		found bool
	)
	for ad.Next() {
		if ad.Type() == typ {
			found = true
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				k, err = decodeTuple(nad)
				return err
			})
		}
	}
	if err := ad.Err(); err != nil {
		return flowKey{}, err
	}
	if !found {
		return flowKey{}, fmt.Errorf("no attribute %d", typ)
	}
	return k, nil
}

// decodeTuple decodes the members of a nested CTA_TUPLE_* attribute.
func decodeTuple(ad *netlink.AttributeDecoder) (flowKey, error) {
	var k flowKey
	for ad.Next() {
		switch ad.Type() {
		case ctaTupleIP:
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					a, ok := netip.AddrFromSlice(nad.Bytes())
					if !ok {
						return fmt.Errorf("address of %d bytes", len(nad.Bytes()))
					}
					switch nad.Type() {
					case ctaIPv4Src, ctaIPv6Src:
						k.src = a
					case ctaIPv4Dst, ctaIPv6Dst:
						k.dst = a
					}
				}
				return nil
			})
		case ctaTupleProto:
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				nad.ByteOrder = binary.BigEndian
				for nad.Next() {
					switch nad.Type() {
					case ctaProtoNum:
						k.proto = nad.Uint8()
					case ctaProtoSrcPort:
						k.sport = nad.Uint16()
					case ctaProtoDstPort:
						k.dport = nad.Uint16()
					}
				}
				return nil
			})
		}
	}
	return k, ad.Err()
}

// encodeTuple writes k as the members of a nested CTA_TUPLE_* attribute.
func encodeTuple(ae *netlink.AttributeEncoder, k flowKey) error {
	ae.Nested(ctaTupleIP, func(nae *netlink.AttributeEncoder) error {
		if k.src.Is4() {
			nae.Bytes(ctaIPv4Src, k.src.AsSlice())
			nae.Bytes(ctaIPv4Dst, k.dst.AsSlice())
		} else {
			nae.Bytes(ctaIPv6Src, k.src.AsSlice())
			nae.Bytes(ctaIPv6Dst, k.dst.AsSlice())
		}
		return nil
	})
	ae.Nested(ctaTupleProto, func(nae *netlink.AttributeEncoder) error {
		nae.ByteOrder = binary.BigEndian
		nae.Uint8(ctaProtoNum, k.proto)
		nae.Uint16(ctaProtoSrcPort, k.sport)
		nae.Uint16(ctaProtoDstPort, k.dport)
		return nil
	})
	return nil
}

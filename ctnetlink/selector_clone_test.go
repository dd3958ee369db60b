package ctnetlink

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// fullSelector returns a selector with every field set.
func fullSelector() *Selector {
	return &Selector{
		Types:        AnyOf(EventNew, EventDestroy),
		Family:       2,
		Proto:        AnyOf[uint8](6, 17),
		OrigSrc:      HostIs(netip.MustParseAddr("192.0.2.1")),
		OrigDst:      HostIs(netip.MustParseAddr("192.0.2.2")),
		ReplySrc:     HostIs(netip.MustParseAddr("192.0.2.3")),
		ReplyDst:     HostIs(netip.MustParseAddr("192.0.2.4")),
		OrigSrcPort:  Port(1),
		OrigDstPort:  Port(2),
		ReplySrcPort: Port(3),
		ReplyDstPort: Port(4),
		ICMPType:     Is[uint8](8),
		ICMPCode:     Is[uint8](0),
		ICMPID:       Is[uint16](7),
		Mark:         Is(MarkMatch{Mark: 1, Mask: 3}),
		Status:       NoneOf(StatusMatch{Status: StatusAssured}),
		Zone:         Is[uint16](5),
		OrigZone:     Is[uint16](6),
		ReplyZone:    Is[uint16](7),
		LabelsAll:    []byte{1},
		LabelsAny:    []byte{2},
		TCPStates:    Is(TCPStateEstablished),
		SCTPStates:   Is(SCTPStateEstablished),
		DCCPStates:   Is(DCCPStateOpen),
		Helper:       "ftp",
		Func:         func(*Flow) bool { return true },
	}
}

// TestSelectorClone changes every value a selector holds after cloning
// it; the clone must keep what the selector held.
func TestSelectorClone(t *testing.T) {
	s := fullSelector()
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("fullSelector leaves %s unset", v.Type().Field(i).Name)
		}
	}
	c := s.Clone()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.Slice {
			f.Index(0).Set(reflect.ValueOf(byte(0xff)))
			continue
		}
		if f.Kind() == reflect.Struct {
			if vals := f.FieldByName("Values"); vals.IsValid() {
				vals.Index(0).SetZero()
			}
		}
	}
	if d := cmp.Diff(fullSelector(), c, cmpopts.IgnoreFields(Selector{}, "Func"), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
		t.Errorf("clone changed with the selector (-want +got):\n%s", d)
	}
	if (*Selector)(nil).Clone() != nil {
		t.Error("nil selector cloned to non-nil")
	}
}

func TestSelectorStable(t *testing.T) {
	stable := []Selector{
		{},
		{Family: 2, Proto: Is[uint8](17), OrigDstPort: Port(53)},
		{OrigSrc: HostIs(netip.MustParseAddr("192.0.2.1")), ReplyDstPort: NoneOf[uint16](80)},
		{ICMPType: Is[uint8](8), Zone: Is[uint16](1), OrigZone: Is[uint16](1)},
		{Types: Is(EventNew)},
	}
	unstable := []Selector{
		{Mark: Is(MarkMatch{})},
		{Status: Is(StatusMatch{Status: StatusAssured})},
		{LabelsAll: []byte{1}},
		{LabelsAny: []byte{1}},
		{TCPStates: Is(TCPStateEstablished)},
		{SCTPStates: Is(SCTPStateEstablished)},
		{DCCPStates: Is(DCCPStateOpen)},
		{Helper: "ftp"},
		{Func: func(*Flow) bool { return true }},
		{Proto: Is[uint8](6), Mark: NoneOf(MarkMatch{Mark: 1})},
	}
	for i, s := range stable {
		if !s.Stable() {
			t.Errorf("stable[%d] %+v: not stable", i, s)
		}
	}
	for i, s := range unstable {
		if s.Stable() {
			t.Errorf("unstable[%d] %+v: stable", i, s)
		}
	}
	if !(*Selector)(nil).Stable() {
		t.Error("nil selector not stable")
	}
}

package ctnetlink

// The program compares attribute values as classic BPF loads them: 1, 2 or
// 4 bytes in network byte order. Which sizes and byte orders the
// attributes have is read from the generated schema table, not assumed,
// so a spec that changed one would leave the event filter to MatchEvent
// instead of making it compare the wrong bytes.

// bpfValue is an attribute whose value the program loads.
type bpfValue struct {
	set  int
	attr uint16
}

// Every attribute value the compiler loads.
var (
	bpfMark      = bpfValue{schemaFlow, uint16(FlowAttrMark)}
	bpfStatus    = bpfValue{schemaFlow, uint16(FlowAttrStatus)}
	bpfZone      = bpfValue{schemaFlow, uint16(FlowAttrZone)}
	bpfTupleZone = bpfValue{schemaTuple, uint16(TupleAttrZone)}
	bpfProtoNum  = bpfValue{schemaTupleProto, uint16(TupleProtoAttrNum)}
	bpfSrcPort   = bpfValue{schemaTupleProto, uint16(TupleProtoAttrSrcPort)}
	bpfDstPort   = bpfValue{schemaTupleProto, uint16(TupleProtoAttrDstPort)}
	bpfV4Src     = bpfValue{schemaTupleIP, uint16(TupleIPAttrV4Src)}
	bpfV4Dst     = bpfValue{schemaTupleIP, uint16(TupleIPAttrV4Dst)}
	bpfV6Src     = bpfValue{schemaTupleIP, uint16(TupleIPAttrV6Src)}
	bpfV6Dst     = bpfValue{schemaTupleIP, uint16(TupleIPAttrV6Dst)}
)

// size returns the payload size the schema table tab gives v, and whether
// the program can compare it as loaded: a single byte, a big-endian 2- or
// 4-byte value, or an address of big-endian words.
func (v bpfValue) size(tab []schemaSet) (int, bool) {
	a := tab[v.set].attrs[v.attr]
	switch {
	case a.size == 1:
		return 1, true
	case a.bigEndian && (a.size == 2 || a.size == 4 || a.size == 16):
		return a.size, true
	}
	return a.size, false
}

// loadSize is size for a value the compiler was told it can load.
func (v bpfValue) loadSize() int {
	n, _ := v.size(schema)
	return n
}

// bpfLoadable reports whether, by the schema table tab, the program can
// compare every value it loads, with the sizes the compiler is written
// for: the zone in both of its places 2 bytes, ports 2, protocol 1, mark
// and status 4, addresses 4 and 16.
func bpfLoadable(tab []schemaSet) bool {
	for _, w := range []struct {
		v    bpfValue
		size int
	}{
		{bpfMark, 4}, {bpfStatus, 4}, {bpfZone, 2}, {bpfTupleZone, 2}, {bpfProtoNum, 1},
		{bpfSrcPort, 2}, {bpfDstPort, 2}, {bpfV4Src, 4}, {bpfV4Dst, 4}, {bpfV6Src, 16}, {bpfV6Dst, 16},
	} {
		if n, ok := w.v.size(tab); !ok || n != w.size {
			return false
		}
	}
	return true
}

package ctnetlink

// Family returns the flow's address family, unix.AF_INET or unix.AF_INET6,
// from its original tuple (or its reply tuple), or 0.
func (f *Flow) Family() uint8 {
	if fam := f.TupleOrig.Family(); fam != 0 {
		return fam
	}
	return f.TupleReply.Family()
}

// ZoneID returns the id of the conntrack zone f belongs to, as the kernel's
// dump and flush filters compare it: CTA_ZONE when the zone applies to both
// directions, otherwise the zone of the tuple it applies to (the kernel
// sends CTA_ZONE only for a zone of both directions), and 0 without a zone.
func (f *Flow) ZoneID() uint16 {
	switch {
	case f.Has(FlowAttrZone):
		return f.Zone
	case f.TupleOrig.Has(TupleAttrZone):
		return f.TupleOrig.Zone
	case f.TupleReply.Has(TupleAttrZone):
		return f.TupleReply.Zone
	}
	return 0
}

package ctnetlink

// Values of the generated types for tests, built with their Set methods,
// the one way to set a value.

func helpNamed(name string) *Help {
	var h Help
	h.SetName(name)
	return &h
}

func seqAdj(pos, before, after uint32) *SeqAdj {
	var s SeqAdj
	s.SetCorrectionPos(pos)
	s.SetOffsetBefore(before)
	s.SetOffsetAfter(after)
	return &s
}

func expectOfHelper(name string) *Expect {
	var e Expect
	e.SetHelpName(name)
	return &e
}

package main

import (
	"net/netip"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ctspec/ctspec/ctnetlink"
	"github.com/ctspec/ctspec/internal/clib"
)

// This file holds what each option of the options table sets: the set
// functions its rows name.

// setAddr parses an address option into the field it sets; for -s, -d,
// --tuple-src and --tuple-dst a "/bits" suffix sets the mask too.
func (p *parser) setAddr(o *option, arg string) error {
	c := p.c
	withMask := o.bit == optOrigSrc || o.bit == optOrigDst || o.bit == optExpSrc || o.bit == optExpDst
	a, m := parseAddr(arg, true)
	if !a.IsValid() {
		return paramError("Invalid IP address `%s'", arg)
	}
	fam := addrFamily(a)
	if err := p.setFamily(fam); err != nil {
		return err
	}
	if m != noMask && !withMask {
		return paramError("CIDR notation unavailable for `--%s'", o.long[0])
	}
	if m == invalidMask {
		return paramError("Invalid netmask")
	}
	var maskAddr netip.Addr
	if m != noMask && !(fam == unix.AF_INET && m == 32) && !(fam == unix.AF_INET6 && m == 128) {
		maskAddr = prefixMask(fam, m)
	}
	switch o.bit {
	case optOrigSrc:
		setTupleSrc(&c.tmpl.TupleOrig, a)
		c.origL3 = fam
	case optOrigDst:
		setTupleDst(&c.tmpl.TupleOrig, a)
		c.origL3 = fam
	case optReplSrc:
		setTupleSrc(&c.tmpl.TupleReply, a)
		c.replL3 = fam
	case optReplDst:
		setTupleDst(&c.tmpl.TupleReply, a)
		c.replL3 = fam
	case optExpSrc:
		setTupleSrc(&c.exp, a)
	case optExpDst:
		setTupleDst(&c.exp, a)
	case optMaskSrc:
		setTupleSrc(&c.mask, a)
	case optMaskDst:
		setTupleDst(&c.mask, a)
	}
	if maskAddr.IsValid() {
		p.setMask(o.bit == optOrigSrc || o.bit == optExpSrc, maskAddr)
	}
	return nil
}

// setMask sets the source or destination netmask of an ADDR/BITS.
func (p *parser) setMask(src bool, m netip.Addr) {
	if src {
		p.c.options |= bit(optMaskSrc)
		setTupleSrc(&p.c.mask, m)
	} else {
		p.c.options |= bit(optMaskDst)
		setTupleDst(&p.c.mask, m)
	}
}

func addrFamily(a netip.Addr) uint8 {
	if a.Is6() {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

func (p *parser) setProto(_ *option, arg string) error {
	c := p.c
	h, num, ok := findProto(arg)
	if !ok {
		return paramError("`%s' unsupported protocol", arg)
	}
	c.proto, c.protoNum = h, num
	p.g.AddLong(h.opts)
	c.tmpl.TupleOrig.Proto.SetNum(num)
	c.origL4 = true
	return nil
}

func (p *parser) setTimeout(_ *option, arg string) error {
	p.c.tmpl.SetTimeout(uint32(clib.Atoi(arg)))
	return nil
}

func (p *parser) setStatus(_ *option, arg string) error {
	c := p.c
	var err error
	c.status, c.statusMask, err = parseStatus(arg, p.warn)
	c.tmpl.SetStatus(ctnetlink.Status(c.status))
	return err
}

func (p *parser) setEventMask(_ *option, arg string) error {
	m, err := parseParams(arg, eventParams, p.warn)
	p.c.eventMask |= m
	return err
}

func (p *parser) setOutput(_ *option, arg string) error {
	c := p.c
	m, err := parseParams(arg, outputParams, p.warn)
	c.output |= m
	switch {
	case err != nil:
		return err
	case c.output&outSave != 0 && c.output&(outExtended|outTimestamp|outID|outKTimestamp|outLabels|outXML|outJSON) != 0:
		return otherError("cannot combine save output with any other output type, use -o save only")
	case c.output&outJSON != 0 && c.output&outXML != 0:
		return otherError("cannot combine json output with xml output")
	}
	return nil
}

func (p *parser) setZero(*option, string) error { return nil }

// setNAT parses --src-nat, --dst-nat and --any-nat. conntrack reads
// their address with get_optional_arg, which takes only the next
// argument and returns none when getopt attached one ("-nADDR",
// "--src-nat=ADDR"): the option then counts as given without an address.
func (p *parser) setNAT(o *option, _ string) error {
	c := p.c
	arg, ok := optionalArg(p.g)
	if !ok {
		return nil
	}
	addrStr, portStr, hasPort, err := splitNATArg(arg)
	if err != nil {
		return err
	}
	a, m := parseAddr(addrStr, true)
	if !a.IsValid() {
		return paramError("Invalid IP address `%s'", addrStr)
	}
	fam := addrFamily(a)
	if err := p.setFamily(fam); err != nil {
		return err
	}
	if m != noMask {
		return paramError("CIDR notation unavailable for `--%s'", o.long[0])
	}
	spec := natSpec{addr: a, hasPort: hasPort}
	if hasPort {
		spec.port = uint16(clib.Atoi(portStr))
	}
	if o.bit == optSrcNAT || o.bit == optAnyNAT {
		c.snat, c.hasSNAT = spec, true
	}
	if o.bit == optDstNAT || o.bit == optAnyNAT {
		c.dnat, c.hasDNAT = spec, true
	}
	c.origL3 = fam
	return nil
}

// optionalArg is conntrack's get_optional_arg: the argument after the
// option when it does not look like an option, and none when getopt
// attached one to the option, which conntrack then ignores.
func optionalArg(g *clib.Getopt) (string, bool) {
	if g.Has {
		return "", false
	}
	return g.NextArg()
}

func (p *parser) setZone(o *option, arg string) error {
	v, _, _ := clib.Strtoul(arg, 0)
	z := uint16(v)
	switch o.bit {
	case optZone:
		p.c.tmpl.SetZone(z)
	case optOrigZone:
		p.c.tmpl.TupleOrig.SetZone(z)
	case optReplZone:
		p.c.tmpl.TupleReply.SetZone(z)
	}
	return nil
}

// setID parses --id, whose value may also be the next argument.
func (p *parser) setID(_ *option, arg string) error {
	if !p.g.Has {
		arg, _ = p.g.NextArg()
	}
	v, _, _ := clib.Strtoul(arg, 0)
	p.c.tmpl.SetID(uint32(v))
	return nil
}

func (p *parser) setSecmark(_ *option, arg string) error {
	v, _, _ := clib.Strtoul(arg, 0)
	p.c.tmpl.SetSecmark(uint32(v))
	return nil
}

func (p *parser) setMark(_ *option, arg string) error {
	p.c.mark, p.c.markMask = parseMark(arg)
	return nil
}

// setLabel collects the label lists of -l, --label-add and --label-del;
// --label-del without a list deletes all labels.
func (p *parser) setLabel(o *option, arg string) error {
	c, g := p.c, p.g
	if c.options&(bit(optAddLabel)|bit(optDelLabel)) == bit(optAddLabel)|bit(optDelLabel) {
		return otherError("cannot use --label-add and --label-del at the same time")
	}
	if o.bit == optDelLabel {
		var ok bool
		if arg, ok = optionalArg(g); !ok {
			c.labelDelAll = true
			return nil
		}
	}
	if o.bit == optLabel {
		c.labelFilter = append(c.labelFilter, arg)
	} else {
		c.labelModify = append(c.labelModify, arg)
	}
	return nil
}

func (p *parser) setDryRun(*option, string) error {
	p.c.dryRun = true
	return nil
}

func (p *parser) setKernelFlush(*option, string) error {
	p.c.kernelFlush = true
	return nil
}

// setNATRange warns that -a is ignored; as in conntrack it does not
// count as given.
func (p *parser) setNATRange(o *option, _ string) error {
	p.c.options &^= bit(o.bit)
	p.warn("WARNING: ignoring -a, deprecated option.\n")
	return nil
}

func (p *parser) setFamilyOpt(_ *option, arg string) error {
	switch {
	case strings.HasPrefix(arg, "ipv4"):
		return p.setFamily(unix.AF_INET)
	case strings.HasPrefix(arg, "ipv6"):
		return p.setFamily(unix.AF_INET6)
	}
	return paramError("`%s' unsupported protocol", arg)
}

func (p *parser) setBufferSize(_ *option, arg string) error {
	p.c.bufSize = clib.Atoi(arg)
	return nil
}

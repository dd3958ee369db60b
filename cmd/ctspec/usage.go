package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

var nowFunc = time.Now

// usageText is conntrack's -h text after its first two lines, from the
// commands and options tables.
func usageText(withExtensions bool) string {
	var b strings.Builder
	b.WriteString("\nCommands:\n")
	for _, c := range commands {
		if c.help != "" {
			b.WriteString(c.help + "\n")
		}
	}
	b.WriteString("\nTables: conntrack, expect, dying, unconfirmed\n")
	section := ""
	for _, o := range options {
		if o.help == "" || o.section == secCtspec {
			continue
		}
		if o.section != section {
			section = o.section
			b.WriteString("\n" + section + "\n")
		}
		b.WriteString(o.help + "\n")
	}
	b.WriteString("\n")
	if withExtensions {
		// ctspec's own options, documented only when -h comes with one
		// of them (ctspec -h --dry-run), so that plain -h stays
		// conntrack's text.
		b.WriteString(secCtspec + "\n")
		for _, o := range options {
			if o.section == secCtspec {
				b.WriteString(o.help + "\n")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// protoHelp is a protocol's -h text, as conntrack prints it after the
// usage when -p names a protocol, or "".
func protoHelp(name string) string {
	switch name {
	case "tcp":
		return "  --orig-port-src\t\toriginal source port\n  --orig-port-dst\t\toriginal destination port\n  --reply-port-src\t\treply source port\n  --reply-port-dst\t\treply destination port\n  --mask-port-src\t\tmask source port\n  --mask-port-dst\t\tmask destination port\n  --tuple-port-src\t\texpectation tuple src port\n  --tuple-port-src\t\texpectation tuple dst port\n  --state\t\t\tTCP state, fe. ESTABLISHED\n"
	case "udp":
		return "  --orig-port-src\t\toriginal source port\n  --orig-port-dst\t\toriginal destination port\n  --reply-port-src\t\treply source port\n  --reply-port-dst\t\treply destination port\n  --mask-port-src\t\tmask source port\n  --mask-port-dst\t\tmask destination port\n  --tuple-port-src\t\texpectation tuple src port\n  --tuple-port-src\t\texpectation tuple dst port\n"
	case "icmp":
		return "  --icmp-type\t\t\ticmp type\n  --icmp-code\t\t\ticmp code\n  --icmp-id\t\t\ticmp id\n"
	case "icmpv6":
		return "  --icmpv6-type\t\t\ticmpv6 type\n  --icmpv6-code\t\t\ticmpv6 code\n  --icmpv6-id\t\t\ticmpv6 id\n"
	}
	return ""
}

func (a *app) usage(c *cmdLine) {
	fmt.Fprintf(a.out, "Command line interface for the connection tracking system. Version 1.4.7\n")
	fmt.Fprintf(a.out, "Usage: %s [commands] [options]\n", a.argv0)
	fmt.Fprint(a.out, usageText(c.dryRun || c.kernelFlush))
	if c.cmd == ctHelp && c.options&bit(optProto) != 0 && c.proto != nil {
		name := c.proto.name
		if c.proto == unknownHandler {
			if n := protoNumName(c.protoNum); n != "" {
				name = n
			}
		}
		fmt.Fprintf(a.out, "Proto `%s' help:\n", name)
		fmt.Fprint(a.out, protoHelp(c.proto.name))
	}
}

// protoNumName is getprotobynumber(3)'s name, or "".
func protoNumName(n uint8) string {
	f, err := os.Open("/etc/protocols")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) >= 2 && fields[1] == strconv.Itoa(int(n)) {
			return fields[0]
		}
	}
	return ""
}

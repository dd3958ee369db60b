package nlattr_test

import (
	"fmt"
	"net/netip"

	"github.com/ctspec/ctspec/internal/nlattr"
)

// Attribute types of a small set, as generated code declares them.
const (
	attrAddr = 1
	attrPort = 2
	attrName = 3
	attrNest = 4
)

func name(t uint16) string {
	switch t {
	case attrAddr:
		return "addr"
	case attrPort:
		return "port"
	case attrName:
		return "name"
	case attrNest:
		return "nest"
	}
	return fmt.Sprintf("attr-%d", t)
}

// Encode a set with a nest, then walk it with a decoder as generated code
// does: typed getters check each length, and the first error is read once,
// with the path of the attribute that caused it.
func Example() {
	e := nlattr.NewEncoder(nil)
	e.Addr4(attrAddr, netip.MustParseAddr("192.0.2.1"))
	off := e.Begin(attrNest)
	e.Uint16BE(attrPort, 21)
	e.String(attrName, "ftp")
	e.End(off)
	b := e.Bytes()

	d := nlattr.NewDecoder(b)
	for d.Next() {
		switch d.Type() {
		case attrAddr:
			fmt.Println("addr", d.Addr4())
		case attrNest:
			inner := nlattr.NewDecoder(d.Bytes())
			for inner.Next() {
				switch inner.Type() {
				case attrPort:
					fmt.Println("port", inner.Uint16BE())
				case attrName:
					fmt.Println("name", inner.String())
				}
			}
			if err := inner.Err(name); err != nil {
				d.Fail(err)
			}
		}
	}
	fmt.Println("error:", d.Err(name))

	// The same set with a 3-byte port inside the nest.
	bad := nlattr.NewEncoder(nil)
	off = bad.Begin(attrNest)
	bad.BytesAttr(attrPort, []byte{0, 21, 0})
	bad.End(off)
	d.Reset(bad.Bytes())
	for d.Next() {
		inner := nlattr.NewDecoder(d.Bytes())
		for inner.Next() {
			inner.Uint16BE()
		}
		if err := inner.Err(name); err != nil {
			d.Fail(err)
		}
	}
	fmt.Println("error:", d.Err(name))
	// Output:
	// addr 192.0.2.1
	// port 21
	// name ftp
	// error: <nil>
	// error: nest.port: want 2 bytes, got 3
}

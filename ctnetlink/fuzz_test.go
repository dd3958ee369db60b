package ctnetlink

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ctspec/ctspec/internal/golden"
	"github.com/ctspec/ctspec/internal/nlattr"
)

// goldenDir holds the messages captured from a real kernel.
var goldenDir = filepath.Join("..", "testdata", "messages")

// topSet returns the schema index of the attribute set at the top of a
// message of type t, or -1.
func topSet(t uint16) int {
	switch MsgType(t) {
	case MsgNew, MsgGet, MsgDelete, MsgGetDying, MsgGetUnconfirmed:
		return schemaFlow
	case MsgGetCtrZero:
		// Flows come back as MsgNew; this type is what the kernel answers
		// EXP_GET_STATS_CPU with.
		return schemaExpectStatsCPU
	case MsgGetStatsCPU:
		return schemaStatsCPU
	case MsgGetStats:
		return schemaStatsGlobal
	case MsgExpNew, MsgExpGet, MsgExpDelete:
		return schemaExpect
	case MsgExpGetStatsCPU:
		return schemaExpectStatsCPU
	}
	return -1
}

// collectPayloads appends to out every payload of set target found in b, which holds
// the attributes of set cur.
func collectPayloads(b []byte, cur, target int, out *[][]byte) {
	if cur == target {
		*out = append(*out, b)
	}
	d := nlattr.NewDecoder(b)
	for d.Next() {
		attrs := schema[cur].attrs
		if int(d.Type()) < len(attrs) && attrs[d.Type()].nested >= 0 {
			collectPayloads(d.Bytes(), attrs[d.Type()].nested, target, out)
		}
	}
}

// goldenMessages loads the captured messages; tb may be nil.
func goldenMessages(tb testing.TB) []*golden.Message {
	msgs, err := golden.ParseDir(goldenDir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		tb.Fatal(err)
	}
	return msgs
}

// fuzzSeeds adds every payload of set found in the golden messages.
func fuzzSeeds(f *testing.F, set int) {
	n := 0
	for _, m := range goldenMessages(f) {
		top := topSet(m.Type)
		if top < 0 || len(m.Payload) < 4 {
			continue
		}
		var found [][]byte
		collectPayloads(m.Payload[4:], top, set, &found)
		for _, b := range found {
			f.Add(b)
			n++
		}
	}
	if n == 0 {
		f.Add([]byte{})
	}
}

package main

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// jsonTestStrings are strings that encoding/json quotes in every way it
// has: plain, HTML characters, control characters, quotes, backslashes,
// U+2028 and U+2029, invalid UTF-8 and multi-byte runes.
var jsonTestStrings = func() []string {
	s := []string{"", "ESTABLISHED", "10.0.0.1", "2001:db8::1", "a<b>&c", `q"b\s`, "\u2028\u2029x",
		"\xff\xfe", "é€😀", "ftp", "system_u:object_r:unlabeled_t:s0", "\x7f\x00end"}
	var all []byte
	for c := range 256 {
		all = append(all, byte(c))
	}
	return append(s, string(all))
}()

// randomJSONFlow fills a jsonFlow at random: each optional field present
// or not, strings drawn from jsonTestStrings.
func randomJSONFlow(r *rand.Rand) *jsonFlow {
	str := func() string { return jsonTestStrings[r.IntN(len(jsonTestStrings))] }
	strs := func() []string {
		switch r.IntN(3) {
		case 0:
			return nil
		case 1:
			return []string{}
		}
		v := make([]string, 1+r.IntN(3))
		for i := range v {
			v[i] = str()
		}
		return v
	}
	u16 := func() *uint16 {
		if r.IntN(2) == 0 {
			return nil
		}
		v := uint16(r.Uint32())
		return &v
	}
	u8 := func() *uint8 {
		if r.IntN(2) == 0 {
			return nil
		}
		v := uint8(r.Uint32())
		return &v
	}
	u32 := func() *uint32 {
		if r.IntN(2) == 0 {
			return nil
		}
		v := r.Uint32() >> r.IntN(32)
		return &v
	}
	u64 := func() *uint64 {
		if r.IntN(2) == 0 {
			return nil
		}
		v := r.Uint64() >> r.IntN(64)
		return &v
	}
	tuple := func() jsonTuple {
		return jsonTuple{Src: str(), Dst: str(), Sport: u16(), Dport: u16(), SrcKey: u16(), DstKey: u16(),
			Type: u8(), Code: u8(), ID: u16(), Zone: u16(), Packets: u64(), Bytes: u64()}
	}
	j := &jsonFlow{Type: str(), Family: str(), Proto: str(), ProtoNum: uint8(r.Uint32()), Timeout: u32(),
		State: str(), Orig: tuple(), Reply: tuple(), Status: strs(), Mark: u32(), Secmark: u32(),
		SecCtx: str(), Zone: u16(), Helper: str(), Labels: strs(), Use: u32(), ID: u32(), DeltaTime: u64()}
	if r.IntN(2) == 0 {
		j.Timestamp = &jsonStamp{Start: r.Uint64(), Stop: r.Uint64() * uint64(r.IntN(2))}
	}
	return j
}

// TestAppendJSONFlow checks appendJSONFlow against encoding/json on
// flows filled at random, and appendJSONString on each string.
func TestAppendJSONFlow(t *testing.T) {
	for _, s := range jsonTestStrings {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		j := randomJSONFlow(r)
		want, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONFlow([]byte("x"), j); string(got) != "x"+string(want) {
			t.Fatalf("appendJSONFlow:\n got %s\nwant %s", got[1:], want)
		}
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctspec/ctspec/internal/nstest"
)

// conntrack-tools has no -o json. TestDifferentialJSON compares every value
// of ctspec -L -o json with the line that conntrack -L -o extended,id prints
// for the same flow, matched by flow id: the timeout and the age within the
// time between the two listings, the rest exactly.
func TestDifferentialJSON(t *testing.T) {
	needConntrack(t)
	ns := nstest.New(t)
	richTable(t, ns)
	bin := ctspecBin(t)
	start := time.Now()
	text := ns.Run(t, "conntrack", "-L", "-o", "extended,id")
	out := ns.Run(t, bin, "-L", "-o", "json")
	skew := time.Since(start)

	want := map[string]map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		v := textValues(t, line)
		want[v["id"]] = v
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		got := jsonValues(t, line)
		w, ok := want[got["id"]]
		if !ok {
			t.Errorf("ctspec printed a flow conntrack did not: %s", line)
			continue
		}
		delete(want, got["id"])
		n++
		for _, k := range []string{"timeout", "delta-time"} {
			wv, err1 := strconv.Atoi(w[k])
			gv, err2 := strconv.Atoi(got[k])
			if err1 != nil || err2 != nil {
				t.Errorf("%s: %s %q, conntrack says %q", line, k, got[k], w[k])
				continue
			}
			if !volatileOK(wv, gv, k == "delta-time", skew) {
				t.Errorf("%s: %s %d, conntrack says %d (listed %v apart)", line, k, gv, wv, skew)
			}
			delete(w, k)
			delete(got, k)
		}
		for k, wv := range w {
			if got[k] != wv {
				t.Errorf("%s: %s %q, conntrack says %q", line, k, got[k], wv)
			}
		}
		for k, gv := range got {
			if _, ok := w[k]; !ok {
				t.Errorf("%s: %s %q, conntrack prints no such field", line, k, gv)
			}
		}
	}
	for id, w := range want {
		t.Errorf("ctspec did not print flow %s: %v", id, w)
	}
	if n < 15 {
		t.Errorf("only %d flows compared", n)
	}
}

// tupleKeys are the keys of conntrack's line that belong to one direction.
var tupleKeys = []string{"src", "dst", "sport", "dport", "type", "code", "id", "srckey", "dstkey", "packets", "bytes"}

// textValues parses a line of conntrack -L -o extended,id into values by
// key: the leading fields, "orig." and "reply." tuple fields, flags and
// the remaining key=value fields.
func textValues(t *testing.T, line string) map[string]string {
	t.Helper()
	f := strings.Fields(line)
	if len(f) < 6 {
		t.Fatalf("conntrack line %q", line)
	}
	v := map[string]string{"family": f[0], "proto": f[2], "protonum": f[3], "timeout": f[4]}
	rest := f[5:]
	if !strings.Contains(rest[0], "=") && !strings.HasPrefix(rest[0], "[") {
		v["state"], rest = rest[0], rest[1:]
	}
	dir := ""
	for _, fld := range rest {
		if strings.HasPrefix(fld, "[") {
			v[fld] = "yes"
			continue
		}
		k, val, ok := strings.Cut(fld, "=")
		if !ok {
			t.Fatalf("conntrack line %q: field %q", line, fld)
		}
		switch {
		case k == "src" && dir == "":
			dir = "orig."
		case k == "src" && dir == "orig.":
			dir = "reply."
		case dir != "" && !slices.Contains(tupleKeys, k):
			dir = "-"
		}
		if dir == "orig." || dir == "reply." {
			k = dir + k
		}
		if k == "srckey" || k == "dstkey" || strings.HasSuffix(k, ".srckey") || strings.HasSuffix(k, ".dstkey") {
			n, err := strconv.ParseUint(val, 0, 16)
			if err != nil {
				t.Fatalf("conntrack line %q: %v", line, err)
			}
			val = strconv.FormatUint(n, 10)
		}
		v[k] = val
	}
	return v
}

// jsonValues parses a line of ctspec -L -o json into the keys of
// textValues.
func jsonValues(t *testing.T, line string) map[string]string {
	t.Helper()
	var j map[string]any
	if err := json.Unmarshal([]byte(line), &j); err != nil {
		t.Fatalf("ctspec -o json line %q: %v", line, err)
	}
	v := map[string]string{}
	str := func(x any) string {
		if f, ok := x.(float64); ok {
			return strconv.FormatFloat(f, 'f', -1, 64)
		}
		return fmt.Sprint(x)
	}
	for k, x := range j {
		switch k {
		case "orig", "reply":
			for tk, tx := range x.(map[string]any) {
				v[k+"."+tk] = str(tx)
			}
		case "status":
			var seenReply bool
			for _, s := range x.([]any) {
				switch s {
				case "ASSURED":
					v["[ASSURED]"] = "yes"
				case "SEEN_REPLY":
					seenReply = true
				}
			}
			if !seenReply {
				v["[UNREPLIED]"] = "yes"
			}
		case "delta_time":
			v["delta-time"] = str(x)
		case "family", "proto", "protonum", "timeout", "state", "mark", "zone", "use", "id", "helper", "secmark":
			v[k] = str(x)
		case "timestamp":
			// The start time, which conntrack prints only as delta-time.
		default:
			t.Errorf("ctspec -o json: field %q is not compared: %s", k, line)
		}
	}
	return v
}

package main

import (
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Two listings see their tables at different moments: a flow's or
// expectation's timeout ticks down once a second and a flow's age
// (delta-time) ticks up. The differential tests compare those numbers
// within volatileSlack seconds of what the time between the listings
// explains, and everything else byte for byte; they never erase a value.
//
// That time is the skew: how much longer after the setup of its table the
// second listing was taken than the first. For two runs back to back on one
// table it is the time between them. For two namespaces set up one after
// the other the same way, it is the difference of the times from each
// setup to each listing. An entry made just before either listing has aged
// about as much in both, so the skew bounds the difference from both sides:
// got's timeout may be up to skew lower than want's, or equal, give or
// take volatileSlack.

// volatileSlack is how many seconds a timeout or an age may differ beyond
// what the skew explains: the clocks of the two programs tick at different
// moments.
const volatileSlack = 2

// volatileREs match the numbers that tick, each in submatch 1, in every
// format that prints them: default and extended ("tcp      6 431999
// ESTABLISHED", "ipv4     2 udp      17 29 src=", "    [NEW] tcp      6
// 120 SYN_SENT"), save ("-A -t 999 "), XML, JSON, and expectations ("299
// proto=6", after an event kind or the time of -o timestamp).
var volatileREs = []*regexp.Regexp{
	// Timeouts first; those from volatileAges on are ages.
	regexp.MustCompile(`(?m)^(?:\[[0-9. ]+\]\t)?(?:\s*\[[A-Z]+\] )?(?:ipv[46]\s+\d+ )?[a-z0-9-]+\s+\d+ (\d+) `),
	regexp.MustCompile(`(?m)^-[AUDI] -t (\d+) `),
	regexp.MustCompile(`(?m)^(?:\[[0-9. ]+\]\t)?(?:\s*\[[A-Z]+\] )?(\d+) proto=`),
	regexp.MustCompile(`<timeout>(\d+)</timeout>`),
	regexp.MustCompile(`"timeout":(\d+)`),
	// Ages.
	regexp.MustCompile(`delta-time=(\d+)`),
	regexp.MustCompile(`<deltatime>(\d+)</deltatime>`),
	regexp.MustCompile(`"delta_time":(\d+)`),
}

// volatileAges is the index of the first age in volatileREs.
const volatileAges = 5

// volatileNum is one ticking number in a text.
type volatileNum struct {
	kind       int // index into volatileREs
	start, end int // byte offsets of the digits
	value      int
}

// volatileNums returns the ticking numbers of s in text order.
func volatileNums(s string) []volatileNum {
	var nums []volatileNum
	for kind, re := range volatileREs {
		for _, m := range re.FindAllStringSubmatchIndex(s, -1) {
			v, err := strconv.Atoi(s[m[2]:m[3]])
			if err != nil {
				continue // too long for an int: compared as text
			}
			nums = append(nums, volatileNum{kind, m[2], m[3], v})
		}
	}
	slices.SortFunc(nums, func(a, b volatileNum) int { return a.start - b.start })
	return nums
}

// volatileTemplate returns s with every ticking number replaced by "#": a
// key under which two listings' lines sort alike.
func volatileTemplate(s string) string {
	var b strings.Builder
	last := 0
	for _, n := range volatileNums(s) {
		b.WriteString(s[last:n.start])
		b.WriteByte('#')
		last = n.end
	}
	b.WriteString(s[last:])
	return b.String()
}

// matchVolatile returns got with each ticking number that the skew and
// volatileSlack explain replaced by the number in the same place of want.
// Numbers further apart stay, and so show in a diff. If the two texts do
// not have the same ticking numbers in the same formats, got is returned
// unchanged: the texts differ anyway.
func matchVolatile(want, got string, skew time.Duration) string {
	w, g := volatileNums(want), volatileNums(got)
	if len(w) != len(g) {
		return got
	}
	for i := range w {
		if w[i].kind != g[i].kind {
			return got
		}
	}
	var b strings.Builder
	last := 0
	for i := range g {
		b.WriteString(got[last:g[i].start])
		if volatileOK(w[i].value, g[i].value, w[i].kind >= volatileAges, skew) {
			b.WriteString(want[w[i].start:w[i].end])
		} else {
			b.WriteString(got[g[i].start:g[i].end])
		}
		last = g[i].end
	}
	b.WriteString(got[last:])
	return b.String()
}

// volatileOK reports whether a timeout, or an age if age is set, that
// reads want in one listing and got in another taken skew later after the
// setup of its table, changed as the skew and volatileSlack explain.
func volatileOK(want, got int, age bool, skew time.Duration) bool {
	// The range of how much more got's entry has aged than want's.
	lo, hi := -volatileSlack, volatileSlack
	if s := int(math.Ceil(skew.Seconds())); s > 0 {
		hi += s
	} else {
		lo += int(math.Floor(skew.Seconds()))
	}
	aged := want - got // timeouts tick down
	if age {
		aged = -aged // ages tick up
	}
	return aged >= lo && aged <= hi
}

// diffVolatile is cmp.Diff(want, got) with ticking numbers compared as
// matchVolatile does.
func diffVolatile(want, got string, skew time.Duration) string {
	return cmp.Diff(want, matchVolatile(want, got, skew))
}

// diffResults compares two programs' results: standard output with ticking
// numbers compared as matchVolatile does and the program name in usage
// text normalised, the rest exactly.
func diffResults(want, got result, skew time.Duration) string {
	want.stdout, got.stdout = usageRE.ReplaceAllString(want.stdout, "Usage: PROG "), usageRE.ReplaceAllString(got.stdout, "Usage: PROG ")
	got.stdout = matchVolatile(want.stdout, got.stdout, skew)
	return cmp.Diff(want, got, cmp.AllowUnexported(result{}))
}

// ages holds, for the two namespaces of a differential test, how long after
// the start of its setup each was listed.
type ages struct {
	start [2]time.Time
	age   [2]time.Duration
}

// setUp marks the start of the setup of namespace i.
func (a *ages) setUp(i int) { a.start[i] = time.Now() }

// listed marks the listing of namespace i.
func (a *ages) listed(i int) { a.age[i] = time.Since(a.start[i]) }

// skew is how much more the second namespace had aged when listed.
func (a *ages) skew() time.Duration { return a.age[1] - a.age[0] }

// sortVolatile sorts the lines of s by their text with the ticking numbers
// left out, so that two listings of the same flows in different orders
// line up whatever their timeouts. Each number stays in its line.
func sortVolatile(s string) string {
	lines := strings.Split(s, "\n")
	slices.SortStableFunc(lines, func(a, b string) int {
		if c := strings.Compare(volatileTemplate(a), volatileTemplate(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return strings.Join(lines, "\n")
}

func TestDiffVolatile(t *testing.T) {
	for _, tt := range []struct {
		name      string
		want, got string
		same      bool
		skew      time.Duration
	}{
		{"default", "tcp      6 431999 ESTABLISHED src=1.2.3.4 mark=5 delta-time=3 use=1\n",
			"tcp      6 431998 ESTABLISHED src=1.2.3.4 mark=5 delta-time=4 use=1\n", true, 0},
		{"default far", "udp      17 50 src=1.2.3.4\n", "udp      17 1050 src=1.2.3.4\n", false, 0},
		{"default other value", "udp      17 50 src=1.2.3.4 mark=9\n", "udp      17 50 src=1.2.3.4 mark=8\n", false, 0},
		{"extended", "ipv4     2 udp      17 29 src=1.2.3.4\n", "ipv4     2 udp      17 31 src=1.2.3.4\n", true, 0},
		{"extended far", "ipv4     2 udp      17 29 src=1.2.3.4\n", "ipv4     2 udp      17 32 src=1.2.3.4\n", false, 0},
		{"event", "    [NEW] tcp      6 120 SYN_SENT src=1.2.3.4\n", "    [NEW] tcp      6 119 SYN_SENT src=1.2.3.4\n", true, 0},
		{"event far", "    [NEW] tcp      6 120 SYN_SENT src=1.2.3.4\n", "    [NEW] tcp      6 1120 SYN_SENT src=1.2.3.4\n", false, 0},
		{"save", "-A -t 50 -u SEEN_REPLY -s 1.2.3.4\n", "-A -t 49 -u SEEN_REPLY -s 1.2.3.4\n", true, 0},
		{"save far", "-A -t 50 -u SEEN_REPLY -s 1.2.3.4\n", "-A -t 1006 -u SEEN_REPLY -s 1.2.3.4\n", false, 0},
		{"xml", "<timeout>50</timeout><deltatime>1</deltatime>", "<timeout>48</timeout><deltatime>2</deltatime>", true, 0},
		{"xml far", "<timeout>50</timeout><deltatime>1</deltatime>", "<timeout>47</timeout><deltatime>1</deltatime>", false, 0},
		{"xml delta far", "<timeout>50</timeout><deltatime>1</deltatime>", "<timeout>50</timeout><deltatime>4</deltatime>", false, 0},
		{"json", `{"timeout":50,"delta_time":1}`, `{"timeout":51,"delta_time":0}`, true, 0},
		{"json far", `{"timeout":50,"delta_time":1}`, `{"timeout":500,"delta_time":1}`, false, 0},
		{"expectation", "[NEW] 299 proto=6 src=1.2.3.4\n", "[NEW] 298 proto=6 src=1.2.3.4\n", true, 0},
		{"expectation far", "299 proto=6 src=1.2.3.4\n", "199 proto=6 src=1.2.3.4\n", false, 0},
		{"one line more", "udp      17 50 src=1.2.3.4\n", "udp      17 50 src=1.2.3.4\nudp      17 50 src=1.2.3.5\n", false, 0},
		{"kinds swapped", "<timeout>5</timeout>delta-time=5", "delta-time=5<timeout>5</timeout>", false, 0},
		// got listed 5 s later after its setup: its timeouts may be up
		// to 5 s lower, its ages up to 5 s higher, give or take 2.
		{"skew", "udp      17 50 src=1.2.3.4 delta-time=1\n", "udp      17 43 src=1.2.3.4 delta-time=8\n", true, 5 * time.Second},
		{"skew far", "udp      17 50 src=1.2.3.4\n", "udp      17 42 src=1.2.3.4\n", false, 5 * time.Second},
		{"skew other way", "udp      17 50 src=1.2.3.4\n", "udp      17 53 src=1.2.3.4\n", false, 5 * time.Second},
		{"skew age far", "udp      17 50 src=1.2.3.4 delta-time=1\n", "udp      17 50 src=1.2.3.4 delta-time=9\n", false, 5 * time.Second},
		{"negative skew", "udp      17 50 src=1.2.3.4 delta-time=8\n", "udp      17 57 src=1.2.3.4 delta-time=1\n", true, -5 * time.Second},
		{"negative skew far", "udp      17 50 src=1.2.3.4\n", "udp      17 58 src=1.2.3.4\n", false, -5 * time.Second},
		{"skew 1000", "-I -t 50 -s 1.2.3.4\n", "-I -t 1050 -s 1.2.3.4\n", false, 10 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			diff := diffVolatile(tt.want, tt.got, tt.skew)
			if (diff == "") != tt.same {
				t.Errorf("diffVolatile(%q, %q) = %q, want equal: %v", tt.want, tt.got, diff, tt.same)
			}
		})
	}
}

func TestSortVolatile(t *testing.T) {
	// The same flows in another order and with ticked timeouts sort
	// alike, and each timeout stays with its flow.
	a := "udp      17 50 src=192.0.2.2 mark=1\nudp      17 1000 src=192.0.2.1 mark=2"
	b := "udp      17 999 src=192.0.2.1 mark=2\nudp      17 49 src=192.0.2.2 mark=1"
	if diff := diffVolatile(sortVolatile(a), sortVolatile(b), time.Second); diff != "" {
		t.Errorf("(-a +b)\n%s", diff)
	}
	// Marks swapped between the flows are a difference.
	c := "udp      17 50 src=192.0.2.2 mark=2\nudp      17 1000 src=192.0.2.1 mark=1"
	if diff := diffVolatile(sortVolatile(a), sortVolatile(c), time.Second); diff == "" {
		t.Error("marks swapped between flows compare equal")
	}
	// Timeouts swapped between the flows are a difference.
	d := "udp      17 1000 src=192.0.2.2 mark=1\nudp      17 50 src=192.0.2.1 mark=2"
	if diff := diffVolatile(sortVolatile(a), sortVolatile(d), time.Second); diff == "" {
		t.Error("timeouts swapped between flows compare equal")
	}
}

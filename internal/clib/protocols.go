package clib

import (
	"bufio"
	"os"
	"strings"
)

// ProtoByName looks a protocol name or alias up in /etc/protocols, as
// getprotobyname(3) does.
func ProtoByName(name string) (int, bool) {
	f, err := os.Open("/etc/protocols")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		match := fields[0] == name
		for _, alias := range fields[2:] {
			match = match || alias == name
		}
		if match {
			v, rest, ok := Strtoul(fields[1], 10)
			if ok && rest == "" && v <= 255 {
				return int(v), true
			}
		}
	}
	return 0, false
}

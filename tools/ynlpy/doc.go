// Package ynlpy holds the tests of ynlpy.py and validate.py, two small
// Python programs that use spec/conntrack.yaml the way the kernel's YNL
// tooling (tools/net/ynl/pyynl) does: validate.py checks every netlink-raw
// spec of the module against the kernel's schema (spec/schema), and
// ynlpy.py reads nothing but a spec to decode live kernel messages, dumps
// and multicast events alike. The tests compare what ynlpy.py decodes with
// what conntrack(8) shows for the same flows, in network namespaces they
// create.
//
// The package has no Go API.
package ynlpy

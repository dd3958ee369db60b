module github.com/ctspec/ctspec/bench

go 1.23.0

require (
	github.com/ctspec/ctspec v0.0.0
	github.com/mdlayher/netlink v1.7.2
	github.com/ti-mo/conntrack v0.6.0
	github.com/vishvananda/netlink v1.3.1
	golang.org/x/sys v0.33.0
)

require (
	github.com/google/go-cmp v0.7.0 // indirect
	github.com/josharian/native v1.1.0 // indirect
	github.com/mdlayher/socket v0.5.1 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/ti-mo/netfilter v0.5.3 // indirect
	github.com/vishvananda/netns v0.0.5 // indirect
	golang.org/x/net v0.39.0 // indirect
	golang.org/x/sync v0.14.0 // indirect
)

replace github.com/ctspec/ctspec => ../

package mirror

import (
	"time"

	"github.com/ctspec/ctspec/ctnetlink"
)

// Defaults of Config.
const (
	// DefaultResyncBackoff is the default Config.ResyncBackoff.
	DefaultResyncBackoff = 100 * time.Millisecond
	// DefaultMaxResyncBackoff is the default Config.MaxResyncBackoff.
	DefaultMaxResyncBackoff = 10 * time.Second
	// DefaultResyncInterval is the default Config.ResyncInterval.
	DefaultResyncInterval = 30 * time.Second
)

// queueLen is how many decoded events wait between the Mirror's reader
// and the goroutine that applies them.
const queueLen = 1024

// dropCheck is how often a Mirror with ReliableDestroy reads the kernel's
// drop counter.
const dropCheck = time.Second

// Config configures a Mirror. A nil *Config means all defaults. New copies
// it; a Config is not otherwise safe for concurrent use.
type Config struct {
	// NetNS is a file descriptor of the network namespace to mirror, as in
	// ctnetlink.Config.NetNS. The default, 0, is the namespace of the
	// calling thread.
	NetNS int

	// Filter selects the flows to mirror. The default, nil, mirrors every
	// flow. Dumps apply it as ctnetlink.Conn.Dump does; events are checked
	// with Selector.Match. A flow that an update moves out of the
	// selection (a new mark, say) is removed from the mirror, one that it
	// moves in is added. New keeps a copy; later changes to the filter
	// have no effect.
	Filter *ctnetlink.Selector

	// ReadBuffer is the event socket's receive buffer, as
	// ctnetlink.ListenConfig.ReadBuffer: 0 asks for
	// ctnetlink.DefaultListenReadBuffer. A small buffer overruns more often
	// and makes the mirror resynchronise more; it does not make it wrong.
	ReadBuffer int

	// ReliableDestroy sets ctnetlink.ListenConfig.ReliableDestroy on the
	// event socket. The default is false.
	//
	// With it, the kernel retries every DESTROY event it could not queue,
	// so a flow never lingers in the mirror after it ended, even between
	// resynchronisations. The price: the kernel keeps ended flows
	// allocated, and counted against net.netfilter.nf_conntrack_max, until
	// the mirror has read their DESTROY, so a mirror that falls behind
	// (a slow OnChange, say) can fill the table and make the kernel drop
	// new connections. It also turns off the kernel's overrun reports
	// (NETLINK_NO_ENOBUFS), so lost NEW and UPDATE events are no longer
	// announced: the mirror then reads the kernel's drop counter
	// (ctnetlink.Listener.Dropped) every second and resynchronises when it
	// grew. Retried DESTROY events count as drops too, so this mode
	// resynchronises after every burst that overran the buffer, as the
	// default mode does.
	ReliableDestroy bool

	// OnChange, if not nil, is called with every change of the mirror, in
	// the order the mirror applies them, on the Mirror's own goroutine.
	// The mirror's content already includes the change when OnChange runs,
	// and the Mirror applies nothing else until it returns: a slow OnChange
	// delays events, which makes the receive buffer overrun and the mirror
	// resynchronise, but loses nothing. OnChange may call the methods that
	// read the mirror (Len, Get, ByID, Range, Stats) and Collector.Collect;
	// it must not call Close or Resync, which wait for the goroutine it
	// runs on (cancel the context instead).
	OnChange func(Change)

	// ResyncBackoff and MaxResyncBackoff bound how soon a resynchronisation
	// follows the previous one when losses repeat. The first loss after a
	// calm period (no resynchronisation for MaxResyncBackoff) is repaired
	// at once; each further one waits twice as long as the last, starting
	// at ResyncBackoff and up to MaxResyncBackoff, counted from the end of
	// the previous resynchronisation. Events keep being applied while a
	// resynchronisation waits. The defaults are DefaultResyncBackoff and
	// DefaultMaxResyncBackoff.
	ResyncBackoff, MaxResyncBackoff time.Duration

	// ResyncInterval is how often to resynchronise when events cannot
	// report every change: see "Flows without events" in the package
	// documentation. It does not apply when net.netfilter.nf_conntrack_events
	// was 1 at New. The default, 0, means DefaultResyncInterval; a negative
	// value turns these resynchronisations off. Resync runs one on demand.
	ResyncInterval time.Duration
}

// withDefaults returns a copy of cfg, which may be nil, with the defaults
// filled in and a copy of the filter.
func withDefaults(cfg *Config) Config {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.Filter != nil {
		c.Filter = c.Filter.Clone()
	}
	if c.ResyncBackoff <= 0 {
		c.ResyncBackoff = DefaultResyncBackoff
	}
	if c.MaxResyncBackoff <= 0 {
		c.MaxResyncBackoff = DefaultMaxResyncBackoff
	}
	c.MaxResyncBackoff = max(c.MaxResyncBackoff, c.ResyncBackoff)
	if c.ResyncInterval == 0 {
		c.ResyncInterval = DefaultResyncInterval
	}
	return c
}

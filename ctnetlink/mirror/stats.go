package mirror

import "time"

// Stats are a Mirror's counters, a value safe for concurrent use.
type Stats struct {
	// Flows is how many flows the mirror holds.
	Flows int
	// Events counts the flow events applied.
	Events uint64
	// Overruns counts the event losses the kernel reported
	// (ctnetlink.ErrEventsLost); with ReliableDestroy, the times the
	// kernel's drop counter grew.
	Overruns uint64
	// DecodeErrors counts events that could not be decoded; each is a lost
	// event and leads to a resynchronisation.
	DecodeErrors uint64
	// Unseen counts flows whose DESTROY event arrived although the mirror
	// never held them, because their NEW and UPDATE events were lost: each
	// was emitted as a synthetic ChangeAdded and ChangeRemoved.
	Unseen uint64
	// Resyncs counts the resynchronisations that completed, not counting
	// the initial dump.
	Resyncs uint64
	// ResyncErrors counts the dumps that failed or that the kernel flagged
	// as interrupted; each is retried after a backoff.
	ResyncErrors uint64
	// LastError is the error of the last dump if it failed, nil if it
	// succeeded.
	LastError error
	// LastEventError is the last error of the event socket that the
	// Mirror survived, nil if none: an event it could not decode (counted
	// in DecodeErrors), or, with ReliableDestroy, a failure to read the
	// kernel's drop counter. Each made it resynchronise.
	LastEventError error
	// LastResync is how long the last completed dump took, with the events
	// applied meanwhile: the initial dump, then the last resynchronisation.
	LastResync time.Duration
	// Pending reports that a resynchronisation is running or scheduled.
	Pending bool
	// Silent counts flows of the initial dump that have had no event since,
	// when net.netfilter.nf_conntrack_events was not 1 (see the package
	// documentation).
	Silent int
	// Polling reports that the mirror resynchronises every ResyncInterval
	// because events cannot report every change (see the package
	// documentation).
	Polling bool
}

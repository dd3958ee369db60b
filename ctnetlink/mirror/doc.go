// Package mirror keeps an in-memory copy of the conntrack table, or of the
// part a ctnetlink.Selector selects, current from events, and repairs it
// by itself after events were lost. It is built on ctnetlink's public API.
//
//	m, err := mirror.New(ctx, &mirror.Config{OnChange: func(c mirror.Change) { ... }})
//
// New subscribes to flow events first and then dumps the table, so that no
// change falls between the dump and the events. Afterwards each NEW,
// UPDATE and DESTROY event updates the copy. Flows are identified by
// ctnetlink.EntryKey (id, zone and original tuple) and indexed by id.
// Every change is handed to Config.OnChange as a Change, in order. A
// Collector reports the flows that were active between two of its calls,
// including those that opened and ended in between.
//
// # Merging a dump with events
//
// Events are read and applied during every dump, so that the receive
// buffer does not fill up while a large table is dumped. A dumped flow and
// an event of the same flow can then arrive in either order, and the dump's
// copy may be older or newer than the event. The Mirror resolves this per
// flow (EntryKey), for the duration of the dump:
//
//   - An event wins over the dump for the values it carries. Events of one
//     flow arrive in order, so the last event applied carries the newest
//     values, and a change after the kernel dumped the flow has an event
//     that arrives after the dump's copy. The dump only fills in what the
//     events left out: UPDATE events carry the TCP state and the labels
//     only when they change, and counters and the start time not at all.
//   - A flow whose DESTROY arrived during the dump is not added back from
//     the dump, whose copy may predate the DESTROY. If the flow is created
//     again with the same id (the kernel derives the id from the entry's
//     address and tuple, so a flow re-created at once may get the old
//     one), its NEW event adds it back.
//   - A flow the mirror held before the dump that neither the dump nor an
//     event during the dump confirmed has ended, and its DESTROY was lost:
//     the Mirror removes it when the dump completes. A dump that fails or
//     that the kernel flags as interrupted removes nothing and is retried.
//   - A flow the dump holds that the mirror did not is added, one whose
//     values differ is updated; differences in the timeout and counters
//     alone, which change without events, update the entry without a
//     Change.
//
// # Losses and resynchronisation
//
// When the kernel reports an overrun (ctnetlink.ErrEventsLost), the Mirror
// applies the events queued before the loss and then resynchronises: it
// dumps the table again and merges the dump as above, which emits the
// missing changes with Synthetic set. So every consumer that applies the
// changes converges to the kernel's table once the losses stop. Losses that
// come while a resynchronisation runs make another one follow it. Repeated
// losses back off (Config.ResyncBackoff): a dump of a big table costs CPU,
// and during an overload that keeps overrunning the buffer, frequent dumps
// would add to the load without ever catching up. Stats counts overruns
// and resynchronisations.
//
// # Flows seen only by their end
//
// A short-lived flow can start and end between two dumps with its NEW and
// UPDATE events lost in an overrun and its DESTROY delivered. No dump ever
// shows such a flow, but its DESTROY carries its tuples, status, mark and,
// with net.netfilter.nf_conntrack_acct=1, its final counters. The Mirror
// then emits the flow as a ChangeAdded immediately followed by a
// ChangeRemoved, both with Synthetic set and the DESTROY's values, and
// counts it in Stats.Unseen; the flow is in the mirror only while OnChange
// handles the ChangeAdded. So OnChange sees every flow whose DESTROY
// reached the Mirror. With Config.ReliableDestroy the kernel delivers
// every DESTROY, so OnChange sees every flow that ended while the Mirror
// ran; without it, a flow whose events were all lost leaves no trace. A
// DESTROY of a flow the Mirror removed recently (one that a dump found gone
// before its DESTROY arrived, or a DESTROY the kernel sent again) is
// recognised and changes nothing.
//
// A hash table resize (writing net.netfilter.nf_conntrack_buckets) during
// a dump can make the kernel skip flows without flagging the dump; the
// Mirror then removes them and adds them back at the next
// resynchronisation or event.
//
// # Flows without events
//
// The sysctl net.netfilter.nf_conntrack_events decides, when a flow is
// created, whether it will ever have events. With 1 it will. With 2, the
// default since Linux 5.19, only if some socket listened for conntrack
// events at that moment: in any network namespace of the host since Linux
// 6.3 (and the 6.1 and 6.2 stable updates of March 2023), in the flow's
// namespace before. A flow created while nobody listened never has
// events, not even its DESTROY, so a mirror started after it would keep
// it after it ended. With 0 no flow has events unless a ruleset asks for
// them (nft ct event set).
//
// So when the sysctl is not 1 at New (or cannot be read), flows of the
// initial dump are counted as silent until they have an event, and while
// any is left the Mirror resynchronises every ResyncInterval. With 0, or
// without the sysctl (a kernel built without CONFIG_NF_CONNTRACK_EVENTS),
// it resynchronises every ResyncInterval always, which makes it a poller.
// Set the sysctl to 1 before creating the Mirror to avoid both.
// ctnetlink.Diagnose explains the namespace's settings; New reads the
// sysctl through it.
//
// # Concurrency
//
// Len, Get, ByID, Range, Stats, Resync, Err, Done and NewCollector may be
// called from any goroutine at any time; Close too, except from OnChange.
// Reads take a read lock of the table and see it between two changes;
// Range holds the lock for the whole iteration, which delays the Mirror's
// updates (and can make the receive buffer overrun), so keep its loop body
// short. The Mirror runs two goroutines: one reads events and one applies
// them, runs the dumps and calls OnChange, so changes are applied and
// delivered one at a time, in order. Close and the cancellation of New's
// context stop both and release the sockets.
//
// # Memory
//
// Each flow takes one Entry (152 bytes) plus 16 bytes of bookkeeping in
// one slice without pointers, which the garbage collector does not scan,
// and a slot in the index map from id to position. A mirror of 250,000
// flows takes about 210 bytes of heap per flow (BenchmarkMirror250k),
// against about 670 for a slice of ctnetlink.Flow. The slice shrinks after
// a resynchronisation finds the table at a quarter of its capacity. A
// Collector adds what its documentation states.
//
// # Kernels
//
// What ctnetlink covers; ReliableDestroy needs the socket drop counter of
// Linux 4.12 or later.
package mirror

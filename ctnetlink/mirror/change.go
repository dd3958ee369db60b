package mirror

import "strconv"

// ChangeKind is the kind of a Change.
type ChangeKind uint8

// The kinds of changes.
const (
	// ChangeAdded is a flow entering the mirror.
	ChangeAdded ChangeKind = iota + 1
	// ChangeUpdated is a change of a flow in the mirror.
	ChangeUpdated
	// ChangeRemoved is a flow leaving the mirror.
	ChangeRemoved
)

// String returns "added", "updated" or "removed", or ChangeKind(N).
func (k ChangeKind) String() string {
	switch k {
	case ChangeAdded:
		return "added"
	case ChangeUpdated:
		return "updated"
	case ChangeRemoved:
		return "removed"
	}
	return "ChangeKind(" + strconv.FormatUint(uint64(k), 10) + ")"
}

// Change is one change of a Mirror's content. It is a value, safe for
// concurrent use once delivered.
//
// Per flow (per Entry.Key), changes come in lifecycle order: one
// ChangeAdded, any number of ChangeUpdated, one ChangeRemoved; a flow may
// then be added again. Applying every change to a map keyed by Entry.Key
// gives the mirror's content.
type Change struct {
	// Kind is what happened.
	Kind ChangeKind
	// Entry is the flow after the change; for ChangeRemoved, the last known
	// state, with the final counters when the kernel's DESTROY event
	// carried them.
	Entry Entry
	// Synthetic is true for changes found by a dump rather than reported
	// by an event: those of the initial dump, and those of a
	// resynchronisation, which adds the flows whose NEW was lost, removes
	// those whose DESTROY was lost and updates those whose UPDATE was lost.
	// It is also true for the ChangeAdded and ChangeRemoved pair of a flow
	// whose DESTROY event arrived although the mirror never held it (see
	// "Flows seen only by their end" in the package documentation).
	Synthetic bool
}

//go:build race

package nfqueue

// raceEnabled reports a build with the race detector, under which
// sync.Pool drops items on purpose and allocation counts mean nothing.
const raceEnabled = true

package main

import (
	"errors"
	"testing"

	"github.com/ctspec/ctspec/ctnetlink"
)

// fakeDump yields n flows with IDs 1..n from one reused Flow, as a dump
// does, then err if not nil, and records whether its consumer stopped it.
func fakeDump(n int, err error, stopped *bool) func(func(*ctnetlink.Flow, error) bool) {
	return func(yield func(*ctnetlink.Flow, error) bool) {
		var f ctnetlink.Flow
		for i := 1; i <= n; i++ {
			f.SetID(uint32(i))
			if !yield(&f, nil) {
				*stopped = true
				return
			}
		}
		if err != nil {
			yield(nil, err)
		}
	}
}

func TestOverlapped(t *testing.T) {
	want := errors.New("dump failed")
	for _, tc := range []struct {
		name string
		n    int
		err  error
	}{
		{"empty", 0, nil},
		{"one batch", overlapBatch, nil},
		{"many batches", 10*overlapBatch + 7, nil},
		{"error after flows", 3*overlapBatch + 1, want},
		{"error at once", 0, want},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stopped bool
			next := uint32(1)
			var gotErr error
			for f, err := range overlapped(fakeDump(tc.n, tc.err, &stopped)) {
				if err != nil {
					gotErr = err
					break
				}
				if f.ID != next {
					t.Fatalf("flow %d has ID %d", next, f.ID)
				}
				next++
			}
			if got := int(next - 1); got != tc.n {
				t.Errorf("got %d flows, want %d", got, tc.n)
			}
			if gotErr != tc.err {
				t.Errorf("error %v, want %v", gotErr, tc.err)
			}
		})
	}
	t.Run("break", func(t *testing.T) {
		var stopped bool
		i := 0
		for range overlapped(fakeDump(100*overlapBatch, nil, &stopped)) {
			if i++; i == 10 {
				break
			}
		}
		// overlapped returns once its goroutine has stopped the dump.
		if !stopped {
			t.Error("dump not stopped after the loop broke")
		}
	})
}

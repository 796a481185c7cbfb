package web

import (
	"os"
	"runtime/debug"
)

// While Serve runs, Go's garbage collector lets the heap grow to
// servingGCPercent more than what is live before it collects, up to
// servingMemoryLimit in all; GOGC and GOMEMLIMIT, when set, win.
//
// Why: the server keeps ~2 MB live and allocates ~10 KB per confirmation
// (requests, forms, the event and its statements). With the default
// GOGC=100 the heap goal stays at its 4 MB floor, and under the load
// benchmark the collector ran ~70 times a second (GODEBUG=gctrace=1):
// marking, sweeping and assists were ~10% of the CPU the handlers share
// with the one writer on this 2-core machine. Measured with
// BenchmarkConfirmLoad, alternating runs: GOGC=400 +11.8% confirmations
// per second (5 of 5 pairs), 1000 another +5.6% (4 of 5). The heap then
// peaks near 40 MB; the limit makes the collector run sooner should many
// large requests ever hold far more than usual.
const (
	servingGCPercent   = 1000
	servingMemoryLimit = 256 << 20
)

// tuneGCForServing applies the settings above and returns what puts the
// previous ones back, unless something changed them meanwhile (another
// Serve in the same process that ended first, say).
func tuneGCForServing() (restore func()) {
	var undo []func()
	if os.Getenv("GOGC") == "" {
		old := debug.SetGCPercent(servingGCPercent)
		undo = append(undo, func() {
			if cur := debug.SetGCPercent(old); cur != servingGCPercent {
				debug.SetGCPercent(cur)
			}
		})
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		old := debug.SetMemoryLimit(servingMemoryLimit)
		undo = append(undo, func() {
			if debug.SetMemoryLimit(-1) == servingMemoryLimit {
				debug.SetMemoryLimit(old)
			}
		})
	}
	return func() {
		for _, f := range undo {
			f()
		}
	}
}

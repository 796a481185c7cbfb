package web_test

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/repermit/repermit/invite/web"
)

// gcPercent reads the garbage collector's GOGC setting.
func gcPercent() int {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	return p
}

// While Serve runs the collector runs less often, within a memory limit;
// afterwards the process has its settings back. GOGC and GOMEMLIMIT from
// the environment win.
func TestServeTunesTheGarbageCollectorWhileServing(t *testing.T) {
	serve := func(during func()) {
		t.Helper()
		st := openStore(t, filepath.Join(t.TempDir(), "s.db"))
		h := web.New(st, web.Options{})
		defer h.Close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- web.Serve(ctx, ln, h, nil) }()
		resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		during()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	gc0, limit0 := gcPercent(), debug.SetMemoryLimit(-1)
	serve(func() {
		if p := gcPercent(); p != 1000 {
			t.Errorf("GOGC while serving = %d, want 1000", p)
		}
		if l := debug.SetMemoryLimit(-1); l != 256<<20 {
			t.Errorf("memory limit while serving = %d, want 256 MiB", l)
		}
	})
	if p, l := gcPercent(), debug.SetMemoryLimit(-1); p != gc0 || l != limit0 {
		t.Errorf("after serving: GOGC %d, limit %d; want %d, %d back", p, l, gc0, limit0)
	}

	t.Setenv("GOGC", "100")
	t.Setenv("GOMEMLIMIT", "1GiB")
	serve(func() {
		if p, l := gcPercent(), debug.SetMemoryLimit(-1); p != gc0 || l != limit0 {
			t.Errorf("with GOGC and GOMEMLIMIT set: GOGC %d, limit %d while serving; want them left at %d, %d", p, l, gc0, limit0)
		}
	})
}

// Package browsertest starts the headless Chromium that the page tests
// drive (the confirmation pages, the HTML report).
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// New starts a headless Chromium with a fresh profile and returns a chromedp
// context, closed when the test ends. Without a browser the test is skipped,
// except under CI=true where it fails: the browser tests are part of the gate.
func New(t *testing.T) context.Context {
	t.Helper()
	path := "/usr/bin/chromium"
	if _, err := os.Stat(path); err != nil {
		if p, err := exec.LookPath("chromium"); err == nil {
			path = p
		} else if os.Getenv("CI") == "true" {
			t.Fatalf("no Chromium at /usr/bin/chromium or on PATH: install Debian's chromium package (CI=true makes this a failure)")
		} else {
			t.Skip("no Chromium installed (apt-get install chromium); skipping the browser test")
		}
	}
	// The flags keep Chromium off the network: this machine has none, and
	// background requests would only fail and slow the test down.
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	return ctx
}

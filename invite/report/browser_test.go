package report_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/repermit/repermit/invite/internal/browsertest"
	"github.com/repermit/repermit/invite/report"
)

// artifactDir is where the screenshot is kept: $REPERMIT_ARTIFACTS (CI
// uploads it), else the test's temporary folder.
func artifactDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("REPERMIT_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

// TestBrowserReportRenders opens the HTML report from disk in Chromium, as
// a marketer would open the file: it renders, the three charts are drawn
// with bars of real size, nothing is loaded from elsewhere, and a
// screenshot is kept.
func TestBrowserReportRenders(t *testing.T) {
	ctx := browsertest.New(t)
	st := openReportStore(t)
	seedReport(t, st, "spring-optin", day0.AddDate(0, 0, -1), springInvites, 2)
	seedReport(t, st, "new-customers", day0, nil, 0)
	rep, err := report.Build(context.Background(), st.DB(), report.Options{Now: day0.Add(10 * 24 * time.Hour), Business: "Kaffee & Co"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := report.WriteHTML(&buf, rep); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(page, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1200, 900),
		chromedp.Navigate("file://"+page),
		chromedp.WaitVisible(chromedp.CSS(`section.campaign svg`)),
	); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Kaffee & Co", "spring-optin", "new-customers", "Confirmation rate", "50.0%",
		"Funnel", "Confirmations per day", "Offers and discounts", "No confirmations yet"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not show %q", want)
		}
	}
	// The first campaign has all three charts; each draws bars that have a
	// size on screen (an SVG that failed to render has none).
	type chartInfo struct {
		Kind   string  `json:"kind"`
		Rects  int     `json:"rects"`
		Width  float64 `json:"width"`
		Height float64 `json:"height"`
	}
	charts, err := chromedp.Run(ctx, chromedp.Evaluate[[]chartInfo](`[...document.querySelectorAll('section.campaign')[0].querySelectorAll('figure.chart')].map(f => {
		const svg = f.querySelector('svg'); const r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
		return {kind: f.className.replace('chart ', ''), rects: svg ? [...svg.querySelectorAll('rect')].filter(e => e.getBBox().width > 0).length : 0,
		        width: r.width, height: r.height};
	})`))
	if err != nil {
		t.Fatal(err)
	}
	if len(charts) != 3 {
		t.Fatalf("charts = %+v, want funnel, days and interests", charts)
	}
	for _, c := range charts {
		if c.Rects == 0 || c.Width < 200 || c.Height < 50 {
			t.Errorf("chart %s did not render: %+v", c.Kind, c)
		}
	}
	// Nothing wider than the window, no request for anything but the file.
	if w, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); err != nil || w > 1200 {
		t.Errorf("page is %d px wide in a 1200 px window (%v)", w, err)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`performance.getEntriesByType('resource').length`)); err != nil || n != 0 {
		t.Errorf("the page loaded %d other resources (%v): it must be self-contained", n, err)
	}

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(artifactDir(t), "report.png")
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the HTML report: %s", out)
}

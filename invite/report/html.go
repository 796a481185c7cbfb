package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"time"
)

//go:embed report.html.tmpl
var htmlTemplate string

// WriteHTML writes the report as one self-contained HTML page: inline CSS
// and inline SVG charts (the funnel, confirmations per day, interests), no
// script, no external file, so it can be mailed or opened from disk. The
// page's own Content-Security-Policy forbids loading anything.
func WriteHTML(w io.Writer, rep Report) error {
	t, err := template.New("report").Parse(htmlTemplate)
	if err != nil {
		return err
	}
	return t.Execute(w, newView(rep))
}

type view struct {
	Title     string
	Business  string
	Generated string
	Campaigns []campaignView
}

type campaignView struct {
	Name, Created, Statement string
	KPIs                     []kpi
	Funnel                   chart
	Days                     chart
	DaysUnit                 string
	Interests                chart
}

type kpi struct {
	Label, Value, Note string
	Accent             bool
}

// chart is an SVG drawing computed in Go; the template only places it.
type chart struct {
	Width, Height int
	Bars          []bar
	Texts         []label
	Lines         []line
	Empty         string // shown instead when there is nothing to draw
}

type bar struct {
	X, Y, W, H string
	Color      string
	Tip        string
}

type label struct {
	X, Y   string
	Text   string
	Anchor string // start, middle, end
	Class  string
}

type line struct{ X1, Y1, X2, Y2 string }

func f1(x float64) string { return fmt.Sprintf("%.1f", x) }

// stageColors give each funnel stage a colour that says good, bad or open.
var stageColors = map[string]string{
	"eligible": "#94a3b8", "invited": "#64748b", "delivered": "#3b82f6", "failed": "#ef4444",
	"visited": "#06b6d4", "confirmed": "#16a34a", "declined": "#f97316", "unsubscribed": "#f59e0b",
	"pending": "#a78bfa", "expired": "#cbd5e1",
}

func newView(rep Report) view {
	v := view{Title: "WhatsApp opt-in report", Business: rep.Business,
		Generated: rep.GeneratedAt.UTC().Format("2 January 2006, 15:04 UTC")}
	if rep.Business != "" {
		v.Title = rep.Business + " · " + v.Title
	}
	for _, c := range rep.Campaigns {
		f := c.Funnel
		cv := campaignView{
			Name: c.Name, Created: c.CreatedAt.Format("2 January 2006"), Statement: c.StatementVersion,
			KPIs: []kpi{
				{Label: "Invited", Value: thousands(f.Invited), Note: "of " + thousands(f.Eligible) + " eligible"},
				{Label: "Confirmed", Value: thousands(f.Confirmed), Note: thousands(f.Pending) + " may still answer", Accent: true},
				{Label: "Confirmation rate", Value: percent(c.ConfirmationRate), Note: "of " + thousands(f.Delivered) + " delivered", Accent: true},
				{Label: "Median time to confirm", Value: HumanDuration(c.MedianToConfirm), Note: "from sending to confirming"},
				{Label: "Reachable on WhatsApp now", Value: thousands(c.ReachableNow), Note: "confirmed and still opted in"},
			},
			Funnel:    funnelChart(f),
			Interests: interestChart(c.Interests, f.Confirmed),
			DaysUnit:  "day",
		}
		if c.Weekly {
			cv.DaysUnit = "week"
		}
		cv.Days = daysChart(c.Days, cv.DaysUnit)
		v.Campaigns = append(v.Campaigns, cv)
	}
	return v
}

// funnelChart draws one horizontal bar per stage, scaled to the eligible
// count, with the count and the share of invited beside it.
func funnelChart(f Funnel) chart {
	const labelW, plotW, rowH, barH = 120.0, 420.0, 30.0, 20.0
	ss := stages(f)
	ch := chart{Width: int(labelW + plotW + 110), Height: int(rowH*float64(len(ss)) + 8)}
	top := float64(max(f.Eligible, f.Invited, 1))
	for i, s := range ss {
		y := 4 + rowH*float64(i)
		w := plotW * float64(s.n) / top
		if s.n > 0 && w < 2 {
			w = 2
		}
		share := ""
		if s.name != "eligible" && f.Invited > 0 {
			share = " · " + percent(ratio(s.n, f.Invited))
		}
		ch.Bars = append(ch.Bars, bar{X: f1(labelW), Y: f1(y), W: f1(w), H: f1(barH), Color: stageColors[s.name],
			Tip: fmt.Sprintf("%s: %s%s", s.name, thousands(s.n), share)})
		ch.Texts = append(ch.Texts,
			label{X: f1(labelW - 8), Y: f1(y + barH*0.72), Text: s.name, Anchor: "end", Class: "lbl"},
			label{X: f1(labelW + w + 6), Y: f1(y + barH*0.72), Text: thousands(s.n) + share, Anchor: "start", Class: "val"})
	}
	return ch
}

// daysChart draws a column per day (or week) with a light grid.
func daysChart(days []Day, unit string) chart {
	const w, h, left, bottom, top = 640.0, 220.0, 40.0, 26.0, 10.0
	ch := chart{Width: int(w), Height: int(h)}
	if len(days) == 0 {
		ch.Empty = "No confirmations yet."
		return ch
	}
	var most int64 = 1
	for _, d := range days {
		most = max(most, d.Confirmed)
	}
	plotW, plotH := w-left-8, h-top-bottom
	slot := plotW / float64(len(days))
	gap := min(slot*0.2, 6)
	for _, tick := range []int64{0, (most + 1) / 2, most} {
		y := top + plotH - plotH*float64(tick)/float64(most)
		ch.Lines = append(ch.Lines, line{X1: f1(left), Y1: f1(y), X2: f1(w - 8), Y2: f1(y)})
		ch.Texts = append(ch.Texts, label{X: f1(left - 6), Y: f1(y + 4), Text: thousands(tick), Anchor: "end", Class: "axis"})
	}
	for i, d := range days {
		bh := plotH * float64(d.Confirmed) / float64(most)
		bw := min(max(slot-gap, 1), 40) // a few days are columns, not walls
		x := left + slot*float64(i) + (slot-bw)/2
		ch.Bars = append(ch.Bars, bar{X: f1(x), Y: f1(top + plotH - bh), W: f1(bw), H: f1(bh), Color: "#16a34a",
			Tip: fmt.Sprintf("%s %s: %s confirmed", unit, d.Day, thousands(d.Confirmed))})
	}
	// Dates under the first, middle and last column.
	marks := []int{0}
	if len(days) > 2 {
		marks = append(marks, len(days)/2)
	}
	if len(days) > 1 {
		marks = append(marks, len(days)-1)
	}
	for _, i := range marks {
		t, _ := time.Parse("2006-01-02", days[i].Day)
		anchor := "middle"
		if len(days) > 1 && i == 0 {
			anchor = "start"
		} else if len(days) > 1 && i == len(days)-1 {
			anchor = "end"
		}
		x := left + slot*float64(i) + slot/2
		if anchor == "start" {
			x = left + slot*float64(i)
		} else if anchor == "end" {
			x = left + slot*float64(i+1)
		}
		ch.Texts = append(ch.Texts, label{X: f1(x), Y: f1(h - 8), Text: t.Format("2 Jan"), Anchor: anchor, Class: "axis"})
	}
	return ch
}

// interestChart draws each interest's share of the people who confirmed.
func interestChart(ins []Interest, confirmed int64) chart {
	const labelW, plotW, rowH, barH = 190.0, 340.0, 30.0, 20.0
	ch := chart{Width: int(labelW + plotW + 110), Height: int(rowH*float64(len(ins)) + 8)}
	if len(ins) == 0 {
		ch.Empty = "This campaign offers no interests."
		return ch
	}
	if confirmed == 0 {
		ch.Empty = "No confirmations yet: interests show once people confirm."
		return ch
	}
	for i, in := range ins {
		y := 4 + rowH*float64(i)
		// The track shows 100 %: several interests can each be chosen by most people.
		ch.Bars = append(ch.Bars,
			bar{X: f1(labelW), Y: f1(y), W: f1(plotW), H: f1(barH), Color: "#e2e8f0", Tip: in.Label},
			bar{X: f1(labelW), Y: f1(y), W: f1(plotW * in.Share), H: f1(barH), Color: "#0ea5e9",
				Tip: fmt.Sprintf("%s: %s of confirmed (%s)", in.Label, percent(in.Share), thousands(in.Count))})
		ch.Texts = append(ch.Texts,
			label{X: f1(labelW - 8), Y: f1(y + barH*0.72), Text: in.Label, Anchor: "end", Class: "lbl"},
			label{X: f1(labelW + plotW + 6), Y: f1(y + barH*0.72), Text: fmt.Sprintf("%s (%s)", percent(in.Share), thousands(in.Count)),
				Anchor: "start", Class: "val"})
	}
	return ch
}

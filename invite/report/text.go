package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// barWidth is the width of the longest bar in the terminal table.
const barWidth = 24

// WriteText writes the report as aligned tables, one block per campaign.
func WriteText(w io.Writer, rep Report) error {
	if len(rep.Campaigns) == 0 {
		_, err := fmt.Fprintln(w, "No campaigns yet: create one with `repermit campaign create NAME`.")
		return err
	}
	for i, c := range rep.Campaigns {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if err := writeCampaignText(w, c); err != nil {
			return err
		}
	}
	return nil
}

func writeCampaignText(w io.Writer, c Campaign) error {
	fmt.Fprintf(w, "Campaign %s (created %s, statement %s)\n\n", c.Name, c.CreatedAt.Format("2006-01-02"), c.StatementVersion)
	f := c.Funnel
	ss := stages(f)
	width := len("people")
	for _, s := range ss {
		width = max(width, len(thousands(s.n)))
	}
	fmt.Fprintf(w, "  %-13s %*s  %10s\n", "stage", width, "people", "of invited")
	for _, s := range ss {
		share, bar := "", ""
		if s.name != "eligible" {
			share = percent(ratio(s.n, f.Invited))
		}
		bar = strings.Repeat("█", int(float64(barWidth)*ratio(s.n, max(f.Eligible, 1))+0.5))
		fmt.Fprintf(w, "  %-13s %*s  %10s  %s\n", s.name, width, thousands(s.n), share, bar)
	}
	fmt.Fprintln(w)
	kw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(kw, "  confirmation rate\t%s of delivered\n", percent(c.ConfirmationRate))
	fmt.Fprintf(kw, "  median time to confirm\t%s\n", HumanDuration(c.MedianToConfirm))
	fmt.Fprintf(kw, "  reachable on WhatsApp now\t%s\n", thousands(c.ReachableNow))
	if len(c.Interests) > 0 {
		var parts []string
		for _, in := range c.Interests {
			parts = append(parts, fmt.Sprintf("%s %s (%s)", in.Label, percent(in.Share), thousands(in.Count)))
		}
		fmt.Fprintf(kw, "  interests (of confirmed)\t%s\n", strings.Join(parts, " · "))
	}
	if n := len(c.Days); n > 0 {
		unit := "day"
		if c.Weekly {
			unit = "week"
		}
		best := c.Days[0]
		for _, d := range c.Days {
			if d.Confirmed > best.Confirmed {
				best = d
			}
		}
		fmt.Fprintf(kw, "  confirmations per %s\t%s … %s, most on %s (%s)\n", unit, c.Days[0].Day, c.Days[n-1].Day, best.Day,
			thousands(best.Confirmed))
	}
	return kw.Flush()
}

type stage struct {
	name string
	n    int64
}

// stages lists the funnel in the order the contract names it.
func stages(f Funnel) []stage {
	return []stage{
		{"eligible", f.Eligible}, {"invited", f.Invited}, {"delivered", f.Delivered}, {"failed", f.Failed},
		{"visited", f.Visited}, {"confirmed", f.Confirmed}, {"declined", f.Declined},
		{"unsubscribed", f.Unsubscribed}, {"pending", f.Pending}, {"expired", f.Expired},
	}
}

// thousands writes 1234567 as "1,234,567".
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

package crm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/nyaruka/phonenumbers"
)

// MethodWhatsAppStop is the ledger method of a withdrawal that came from a
// STOP reply on WhatsApp.
const MethodWhatsAppStop = "whatsapp:stop"

// StopReply is one row of a file of WhatsApp STOP replies.
type StopReply struct {
	Line  int       // line number in the file (1 is the header when there is one)
	Phone string    // the number as written
	At    time.Time // when the person replied; zero when the file has no time for it
	// RawTime is the time as written, kept when it could not be read.
	RawTime string
	// International is set when the number came from a column that holds
	// numbers in international form without a "+" (wa_id, msisdn).
	International bool
}

// StopReader reads a file of STOP replies as WhatsApp Business providers and
// inbox tools export them: CSV with ",", ";" or tab, a header naming a phone
// column and (optionally) a time column in one of many spellings, or no
// header at all (number first, time second). It streams: one row at a time.
type StopReader struct {
	r        *csv.Reader
	phoneCol int
	timeCol  int // -1 when there is none
	intl     bool
	pending  []string // the first row when the file has no header
	pendLine int
}

// stopPhoneHeaders and stopTimeHeaders are header names after stopFoldHeader (lower
// case, letters and digits only), in order of preference.
var stopPhoneHeaders = []string{
	"phone", "phonenumber", "phonee164", "e164", "mobile", "mobilenumber", "mobilephone", "cell", "cellphone",
	"whatsapp", "whatsappnumber", "whatsappphone", "waid", "msisdn", "from", "fromnumber", "sender",
	"sendernumber", "contactnumber", "contactphone", "customerphone", "number", "tel", "telephone", "handy",
	"telefon", "telefonnummer", "mobilnummer", "telefono", "celular", "movil", "telephoneportable", "portable",
	"numero", "cliente", "contact", "to",
}

var stopTimeHeaders = []string{
	"time", "timestamp", "datetime", "date", "receivedat", "received", "receivedtime", "repliedat", "replytime",
	"optedoutat", "optouttime", "optoutat", "optoutdate", "stoppedat", "stoptime", "unsubscribedat",
	"createdat", "created", "sentat", "sent", "at", "when", "messagetime", "messagedate", "datesent",
	"datecreated", "zeit", "datum", "zeitpunkt", "fecha", "hora", "heure",
}

// stopIntlHeaders hold numbers in international form without "+".
var stopIntlHeaders = map[string]bool{"waid": true, "msisdn": true, "e164": true, "phonee164": true}

func stopFoldHeader(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// NewStopReader detects the delimiter and the columns. It returns an error
// when the file is empty or names no phone column.
func NewStopReader(in io.Reader) (*StopReader, error) {
	br := bufio.NewReader(in)
	first, err := br.Peek(64 * 1024)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, err
	}
	if bytes.HasPrefix(first, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
		first = first[3:]
	}
	r := csv.NewReader(br)
	r.Comma = stopSniffDelimiter(first)
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	r.ReuseRecord = false
	sr := &StopReader{r: r, timeCol: -1}
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("the STOP file is empty: expected a header with a phone column, or one number per line")
	}
	if err != nil {
		return nil, fmt.Errorf("STOP file line 1: %w", err)
	}
	if sr.findColumns(header) {
		return sr, nil
	}
	// No recognisable header: a bare list when the first field looks like a
	// number, else a header we cannot read.
	if stopLooksLikePhone(header[0]) {
		sr.phoneCol, sr.timeCol = 0, -1
		if len(header) > 1 {
			sr.timeCol = 1
		}
		sr.pending, sr.pendLine = header, 1
		return sr, nil
	}
	return nil, fmt.Errorf("the STOP file has no phone column (header: %s): name it phone, mobile, wa_id, msisdn or from", strings.Join(header, ", "))
}

func (sr *StopReader) findColumns(header []string) bool {
	folded := make([]string, len(header))
	for i, h := range header {
		folded[i] = stopFoldHeader(h)
	}
	find := func(names []string, skip int) int {
		for _, n := range names {
			for i, f := range folded {
				if i != skip && f == n {
					return i
				}
			}
		}
		return -1
	}
	sr.phoneCol = find(stopPhoneHeaders, -1)
	if sr.phoneCol < 0 {
		// Looser: a header that contains a phone word ("Customer Mobile No.").
		for i, f := range folded {
			if strings.Contains(f, "phone") || strings.Contains(f, "mobile") || strings.Contains(f, "whatsapp") ||
				strings.Contains(f, "msisdn") || strings.Contains(f, "waid") || strings.Contains(f, "telefon") {
				sr.phoneCol = i
				break
			}
		}
	}
	if sr.phoneCol < 0 {
		return false
	}
	sr.intl = stopIntlHeaders[folded[sr.phoneCol]]
	sr.timeCol = find(stopTimeHeaders, sr.phoneCol)
	if sr.timeCol < 0 {
		for i, f := range folded {
			if i != sr.phoneCol && (strings.Contains(f, "time") || strings.Contains(f, "date") || strings.Contains(f, "datum")) {
				sr.timeCol = i
				break
			}
		}
	}
	return true
}

// stopSniffDelimiter picks the delimiter that occurs most often, outside quotes,
// on the first line.
func stopSniffDelimiter(b []byte) rune {
	counts := map[rune]int{}
	quoted := false
	for _, c := range string(b) {
		if c == '"' {
			quoted = !quoted
			continue
		}
		if quoted {
			continue
		}
		if c == '\n' {
			break
		}
		if c == ',' || c == ';' || c == '\t' {
			counts[c]++
		}
	}
	best := ','
	for _, c := range []rune{';', '\t'} {
		if counts[c] > counts[best] {
			best = c
		}
	}
	return best
}

func stopLooksLikePhone(s string) bool {
	s = strings.TrimPrefix(strings.TrimSpace(s), "whatsapp:")
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case strings.ContainsRune("+-() ./", r):
		default:
			return false
		}
	}
	return digits >= 6
}

// Next returns the next reply, or io.EOF. Blank lines are skipped. A row
// whose time cannot be read is returned with a zero At and RawTime set.
func (sr *StopReader) Next() (StopReply, error) {
	for {
		var rec []string
		var line int
		if sr.pending != nil {
			rec, line, sr.pending = sr.pending, sr.pendLine, nil
		} else {
			var err error
			rec, err = sr.r.Read()
			line, _ = sr.r.FieldPos(0)
			if err != nil {
				var pe *csv.ParseError
				if errors.As(err, &pe) {
					return StopReply{Line: pe.StartLine}, fmt.Errorf("line %d: %w", pe.StartLine, pe.Err)
				}
				return StopReply{}, err
			}
		}
		if len(rec) == 0 || (len(rec) == 1 && strings.TrimSpace(rec[0]) == "") {
			continue
		}
		rep := StopReply{Line: line, International: sr.intl}
		if sr.phoneCol < len(rec) {
			rep.Phone = strings.TrimSpace(rec[sr.phoneCol])
		}
		if sr.timeCol >= 0 && sr.timeCol < len(rec) {
			raw := strings.TrimSpace(rec[sr.timeCol])
			if t, ok := ParseReplyTime(raw); ok {
				rep.At = t
			} else {
				rep.RawTime = raw
			}
		}
		return rep, nil
	}
}

// stopTimeLayouts are the time formats STOP exports use. Times without a
// zone are taken as UTC.
var stopTimeLayouts = []string{
	time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05 -0700 MST", "2006-01-02 15:04:05 MST", "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02",
	time.RFC1123Z, time.RFC1123, time.RFC850, time.ANSIC, "Mon, 2 Jan 2006 15:04:05 -0700",
	"02.01.2006 15:04:05", "02.01.2006 15:04", "02.01.2006", "2006/01/02 15:04:05", "2006/01/02 15:04", "2006/01/02",
	"Jan 2, 2006 3:04:05 PM", "Jan 2, 2006 15:04", "2 Jan 2006 15:04:05", "2 Jan 2006 15:04",
}

// ParseReplyTime reads the time of a STOP reply: ISO 8601 / RFC 3339 and
// their common variants, RFC 1123, day.month.year, year/month/day, and Unix
// time in seconds or milliseconds (what webhook logs hold). Slash dates
// with the day or month first (01/02/2006) are refused: they are ambiguous.
func ParseReplyTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		switch {
		case n >= 1e9 && n < 1e11: // seconds: 2001 … 5138
			return time.Unix(n, 0).UTC(), true
		case n >= 1e12 && n < 1e14: // milliseconds
			return time.UnixMilli(n).UTC(), true
		}
		return time.Time{}, false
	}
	for _, l := range stopTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// NormalizeStopNumber parses a number as written into E.164, using region (ISO
// 3166 code, e.g. "DE") for numbers without a country code. international
// says the digits already start with the country code (wa_id, msisdn).
func NormalizeStopNumber(raw, region string, international bool) (string, error) {
	s := strings.TrimSpace(raw)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "whatsapp:"), "tel:")
	if s == "" {
		return "", errors.New("no phone number")
	}
	if strings.HasPrefix(s, "00") {
		s = "+" + s[2:]
	}
	if international && !strings.HasPrefix(s, "+") {
		s = "+" + s
	}
	num, err := phonenumbers.Parse(s, strings.ToUpper(region))
	if err == nil && phonenumbers.IsValidNumber(num) {
		return phonenumbers.Format(num, phonenumbers.E164), nil
	}
	if !strings.HasPrefix(s, "+") {
		// Digits that already start with a country code (a provider's
		// wa_id in a column with another name).
		if n2, err2 := phonenumbers.Parse("+"+s, ""); err2 == nil && phonenumbers.IsValidNumber(n2) {
			return phonenumbers.Format(n2, phonenumbers.E164), nil
		}
		if region == "" {
			return "", errors.New("the number has no country code: write it as +CC… or pass --default-region")
		}
	}
	if err != nil {
		return "", errors.New("not a phone number")
	}
	return "", errors.New("not a valid phone number for its country")
}

// MaskNumber shows enough of a number to find it in a file without printing
// it whole (reports and logs carry no full numbers).
func MaskNumber(s string) string {
	r := []rune(strings.TrimSpace(s))
	if len(r) <= 5 {
		return strings.Repeat("*", len(r))
	}
	return string(r[:3]) + strings.Repeat("*", len(r)-5) + string(r[len(r)-2:])
}

// OptoutOptions says how to read a STOP file.
type OptoutOptions struct {
	// DefaultRegion is the ISO 3166 country of numbers written without a
	// country code ("" refuses them).
	DefaultRegion string
	// Source names the file in the suppression list and the evidence (a
	// base name, not a path with personal folders).
	Source string
	// BatchSize is how many rows one transaction holds (default 1000).
	BatchSize int
}

// OptoutIssue is a row that was not (fully) applied, for the user to check.
type OptoutIssue struct {
	Line    int    `json:"line"`
	Phone   string `json:"phone"` // masked
	Problem string `json:"problem"`
}

// OptoutResult counts what an import did. Rows = Matched + Unmatched +
// Rejected. Withdrawn counts ledger events, not rows: a re-run adds none.
type OptoutResult struct {
	Rows       int           `json:"rows"`
	Matched    int           `json:"matched"`
	Withdrawn  int           `json:"withdrawn"`
	Unmatched  int           `json:"unmatched"`
	Rejected   int           `json:"rejected"`
	Suppressed int           `json:"suppressed"` // new suppression entries
	Issues     []OptoutIssue `json:"issues"`
}

// ImportOptouts applies a file of WhatsApp STOP replies: every number goes
// on the suppression list for WhatsApp (so that whoever holds it later stays
// out of segments too), and every contact with that number gets WhatsApp
// consent withdrawn (method whatsapp:stop, at the reply's time) unless it
// already is, or a later WhatsApp decision of theirs is on record. Numbers
// that match nobody and rows that cannot be read are listed in Issues with
// their line numbers. Running it again changes nothing.
//
// A row whose time cannot be read is still honoured (opt-outs win), with the
// time of the import, and listed in Issues.
func (s *Store) ImportOptouts(ctx context.Context, in io.Reader, opt OptoutOptions) (OptoutResult, error) {
	res := OptoutResult{Issues: []OptoutIssue{}}
	sr, err := NewStopReader(in)
	if err != nil {
		return res, err
	}
	if opt.BatchSize <= 0 {
		opt.BatchSize = 1000
	}
	if opt.Source == "" {
		opt.Source = "optout-import"
	}
	batch := make([]StopReply, 0, opt.BatchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		var part OptoutResult
		err := s.Update(ctx, func(tx *Tx) error {
			part = OptoutResult{}
			for _, rep := range batch {
				if err := tx.applyStop(rep, opt, &part); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		res.Rows += part.Rows
		res.Matched += part.Matched
		res.Withdrawn += part.Withdrawn
		res.Unmatched += part.Unmatched
		res.Rejected += part.Rejected
		res.Suppressed += part.Suppressed
		res.Issues = append(res.Issues, part.Issues...)
		batch = batch[:0]
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		rep, err := sr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// A broken row is listed; the rest of the file still counts.
			res.Rows++
			res.Rejected++
			res.Issues = append(res.Issues, OptoutIssue{Line: rep.Line, Problem: "unreadable CSV: " + err.Error()})
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				continue
			}
			return res, err
		}
		batch = append(batch, rep)
		if len(batch) == opt.BatchSize {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	return res, flush()
}

func (tx *Tx) applyStop(rep StopReply, opt OptoutOptions, res *OptoutResult) error {
	res.Rows++
	e164, err := NormalizeStopNumber(rep.Phone, opt.DefaultRegion, rep.International)
	if err != nil {
		res.Rejected++
		res.Issues = append(res.Issues, OptoutIssue{Line: rep.Line, Phone: MaskNumber(rep.Phone), Problem: err.Error()})
		return nil
	}
	at := rep.At
	if at.IsZero() {
		at = tx.Now
		if rep.RawTime != "" {
			res.Issues = append(res.Issues, OptoutIssue{Line: rep.Line, Phone: MaskNumber(e164),
				Problem: fmt.Sprintf("time %q not understood: recorded with the time of this import (use ISO 8601, e.g. 2026-01-31T14:05:00Z)", rep.RawTime)})
		}
	}
	isNew, err := tx.SuppressPhone(e164, ReasonStop, opt.Source)
	if err != nil {
		return err
	}
	if isNew {
		res.Suppressed++
	}
	// "phone_hash <> ''" lets SQLite use the partial index contacts_phone_hash.
	lookup, err := tx.prepared(`SELECT id FROM contacts WHERE phone_hash = ? AND phone_hash <> '' AND erased_at IS NULL ORDER BY id`)
	if err != nil {
		return err
	}
	rows, err := lookup.Query(tx.store.HashPhone(e164))
	if err != nil {
		return err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(ids) == 0 {
		res.Unmatched++
		res.Issues = append(res.Issues, OptoutIssue{Line: rep.Line, Phone: MaskNumber(e164),
			Problem: "no contact has this number (suppressed anyway, so it stays out of every segment)"})
		return nil
	}
	res.Matched++
	for _, id := range ids {
		cur, err := tx.CurrentConsent(id, ChannelWhatsApp)
		if err != nil {
			return err
		}
		// Already withdrawn, or a WhatsApp decision made after this reply
		// (which saw it, or supersedes it): nothing to record.
		if cur.Action == ActionWithdrawn || (cur.EventID != 0 && cur.At.After(at)) {
			continue
		}
		ev := map[string]string{"source": opt.Source, "line": strconv.Itoa(rep.Line)}
		if rep.RawTime != "" {
			ev["reply_time_unparsed"] = rep.RawTime
		}
		if err := tx.AppendEvent(&Event{ContactID: id, Channel: ChannelWhatsApp, Action: ActionWithdrawn, At: at,
			Method: MethodWhatsAppStop, Evidence: ev}); err != nil {
			return err
		}
		res.Withdrawn++
	}
	return nil
}

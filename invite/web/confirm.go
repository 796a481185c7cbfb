package web

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/repermit/repermit/crm"
)

// Method is the ledger method of a WhatsApp decision on the confirmation page.
const (
	MethodConfirmPage     = "invite:confirm-page"
	MethodOneClick        = "one-click-unsubscribe"
	MethodUnsubscribePage = "unsubscribe-page"
	MethodPreferencePage  = "preference-page"
)

// closedPage answers for an invitation that cannot be answered (erased
// contact 410, expired 410, suppressed for WhatsApp or everything 403) and
// reports whether it did.
func (s *Server) closedPage(w http.ResponseWriter, r *http.Request, inv *invitation, lang string) bool {
	switch {
	case inv.Erased:
		s.message(w, r, http.StatusGone, lang, "gone_title", "gone_text")
	case inv.expired(s.st.Now()):
		s.message(w, r, http.StatusGone, lang, "exp_title", "exp_text", s.opt.Business.Name, formatDate(lang, inv.ExpiresAt))
	case inv.Blocked:
		s.message(w, r, http.StatusForbidden, lang, "blocked_title", "blocked_text", s.opt.Business.Name)
	default:
		return false
	}
	return true
}

// confirmView is the confirmation page of inv, before any input.
func (s *Server) confirmView(ctx context.Context, inv *invitation, lang, token string) (*view, error) {
	stmt, err := s.statement(ctx, inv.StatementVersion, inv.Language)
	if err != nil {
		return nil, fmt.Errorf("campaign %q: %w (its statement must be stored before invitations go out)", inv.Campaign, err)
	}
	v := &view{Lang: lang, Business: s.opt.Business, Token: token, Statement: stmt}
	v.Title = v.T("confirm_title", s.opt.Business.Name)
	v.Hello = v.T("hello_anon")
	if name := strings.TrimSpace(inv.FirstName); name != "" {
		v.Hello = v.T("hello", name)
	}
	if inv.Phone != "" && !inv.PhoneBlocked {
		v.MaskedPhone = maskPhone(inv.Phone)
	} else {
		v.NeedPhone = true
	}
	for _, in := range inv.Settings.Interests {
		v.Interests = append(v.Interests, choice{Name: in.Name, Label: in.Label(lang)})
	}
	when := formatDate(lang, inv.RespondedAt)
	switch inv.Response {
	case "confirmed":
		v.Answered = v.T("answered_confirmed", when)
	case "declined":
		v.Answered = v.T("answered_declined", when)
	case "unsubscribed":
		v.Answered = v.T("answered_unsub", when)
	}
	return v, nil
}

// confirmGet shows the confirmation page and logs the visit; nothing else.
func (s *Server) confirmGet(w http.ResponseWriter, r *http.Request) {
	inv, lang, ok := s.open(w, r)
	if !ok {
		return
	}
	s.recordVisit(r, inv, "confirm")
	if s.closedPage(w, r, inv, lang) {
		return
	}
	v, err := s.confirmView(r.Context(), inv, lang, r.PathValue("token"))
	if err != nil {
		s.fail(w, r, lang, err)
		return
	}
	s.render(w, http.StatusOK, "confirm", v)
}

// decision is what a POST to /c asks to record.
type decision struct {
	action    string // crm.ActionConfirmed or crm.ActionDeclined
	interests []string
	phone     string // E.164 to store, "" to keep the stored one
	phoneRaw  string
	statement crm.Statement
	ip, ua    string
	lang      string
}

// Outcomes of recording a decision.
type outcome int

const (
	recorded outcome = iota
	repeated
	gone
	expired
	blocked
	phoneBlocked
	phoneMissing
)

// confirmPost records a person's answer. A bad or missing number re-renders
// the form with what was entered; the success page is shown only after the
// answer is durable.
func (s *Server) confirmPost(w http.ResponseWriter, r *http.Request) {
	inv, lang, ok := s.open(w, r)
	if !ok {
		return
	}
	if s.closedPage(w, r, inv, lang) || !s.readForm(w, r, lang) {
		return
	}
	token := r.PathValue("token")
	stmt, err := s.statement(r.Context(), inv.StatementVersion, inv.Language)
	if err != nil {
		s.fail(w, r, lang, fmt.Errorf("campaign %q: %w (its statement must be stored before invitations go out)", inv.Campaign, err))
		return
	}
	d := decision{ip: s.clientIP(r), ua: clip(r.UserAgent(), 1024), lang: lang, statement: stmt}
	d.interests = offered(r.PostForm["interest"], inv.Settings.Interests)
	phone := clip(strings.TrimSpace(r.PostForm.Get("phone")), 64)
	// form re-renders the confirmation page with what was entered and a
	// message. Only a refused answer needs it, so an accepted one does not
	// build it (a full page view, ~2% of a confirmation's CPU).
	form := func(status int, set func(v *view)) {
		v, err := s.confirmView(r.Context(), inv, lang, token)
		if err != nil {
			s.fail(w, r, lang, err)
			return
		}
		for i := range v.Interests {
			v.Interests[i].Checked = slices.Contains(d.interests, v.Interests[i].Name)
		}
		v.Phone = phone
		set(v)
		s.render(w, status, "confirm", v)
	}
	// Record the statement the person was shown, should the contact's
	// language have changed since the page was rendered.
	if shown := r.PostForm.Get("statement"); shown != "" && shown != stmt.SHA256 {
		if st, err := s.statementByHash(r.Context(), inv.StatementVersion, shown); err == nil {
			d.statement = st
		}
	}
	switch r.PostForm.Get("decision") {
	case "confirm":
		d.action = crm.ActionConfirmed
		region := inv.Country
		if region == "" {
			region = s.opt.DefaultRegion
		}
		switch {
		case phone != "":
			e164, err := parsePhone(phone, region)
			if err != nil {
				form(http.StatusUnprocessableEntity, func(v *view) { v.PhoneError = v.T("err_phone_invalid") })
				return
			}
			d.phone, d.phoneRaw = e164, phone
		case inv.Phone == "" || inv.PhoneBlocked: // the page asked for a number (confirmView's NeedPhone)
			form(http.StatusUnprocessableEntity, func(v *view) { v.PhoneError = v.T("err_phone_missing") })
			return
		}
	case "decline":
		d.action = crm.ActionDeclined
		d.phone = ""
	default:
		form(http.StatusBadRequest, func(v *view) { v.DecisionError = v.T("err_decision") })
		return
	}
	out, err := s.recordDecision(r.Context(), inv, d)
	if err != nil {
		s.fail(w, r, lang, err)
		return
	}
	switch out {
	case gone:
		s.message(w, r, http.StatusGone, lang, "gone_title", "gone_text")
		return
	case expired:
		s.message(w, r, http.StatusGone, lang, "exp_title", "exp_text", s.opt.Business.Name, formatDate(lang, inv.ExpiresAt))
		return
	case blocked:
		s.message(w, r, http.StatusForbidden, lang, "blocked_title", "blocked_text", s.opt.Business.Name)
		return
	case phoneBlocked:
		form(http.StatusUnprocessableEntity, func(v *view) { v.PhoneError = v.T("err_phone_blocked") })
		return
	case phoneMissing:
		form(http.StatusUnprocessableEntity, func(v *view) {
			v.NeedPhone, v.MaskedPhone = true, ""
			v.PhoneError = v.T("err_phone_missing")
		})
		return
	}
	number := d.phone
	if number == "" {
		number = inv.Phone
	}
	s.writeDone(w, lang, token, d.action == crm.ActionConfirmed, number)
}

// doneView is the success page's view: the answer recorded, and for a
// confirmation the number (masked) the messages will go to.
func (s *Server) doneView(lang, token string, confirmed bool, phone string) *view {
	v := &view{Lang: lang, Business: s.opt.Business, Token: token, Confirmed: confirmed, Done: doneTextsFor(lang)}
	if confirmed {
		v.Title = v.T("yes_title")
		v.MaskedPhone = maskPhone(phone)
		v.Text = v.T("yes_text", s.opt.Business.Name, v.MaskedPhone)
		v.WhatsAppLink = waLink(s.opt.Business.WhatsAppNumber)
		v.Receipt = s.opt.Receipt != nil
	} else {
		v.Title = v.T("no_title")
		v.Text = v.T("no_text", s.opt.Business.Name)
	}
	return v
}

// statementByHash finds the statement of a version with the given hash.
func (s *Server) statementByHash(ctx context.Context, version, sha string) (crm.Statement, error) {
	st := crm.Statement{Channel: crm.ChannelWhatsApp, Version: version, SHA256: sha}
	err := s.st.DB().QueryRowContext(ctx, `SELECT language, text FROM statements
		WHERE channel = ? AND version = ? AND sha256 = ? LIMIT 1`, st.Channel, version, sha).Scan(&st.Language, &st.Text)
	return st, err
}

// decisionStateSQL re-reads, inside the writing transaction, everything
// that decides whether an answer may be recorded: another request (or an
// erasure, a complaint) may have come in since the page was read. Only the
// slow path runs it (see claimSQL).
const decisionStateSQL = `SELECT i.response, i.expires_at, k.erased_at IS NOT NULL, k.phone_e164,
	EXISTS (SELECT 1 FROM suppressions s WHERE s.email_hash = k.email_hash AND s.channel <> 'email'),
	EXISTS (SELECT 1 FROM suppressions s WHERE s.phone_hash <> ''
		AND s.phone_hash = (CASE WHEN ? <> '' THEN ? ELSE k.phone_hash END) AND s.channel <> 'email'),
	coalesce((SELECT cc.action FROM consent_current cc WHERE cc.contact_id = k.id AND cc.channel = 'whatsapp'), 'none')
FROM invitations i JOIN contacts k ON k.id = i.contact_id
WHERE i.id = ?`

// claimSQL closes the invitation only if what the handler read from the
// read pool still holds: the same response (one that differs from this
// answer, so the answer is no repeat), the contact not erased and with the
// same stored number, and, for a confirmation, no suppression of its email
// or of the number to be used. Exactly then decisionStateSQL would say
// "recorded", so one UPDATE whose row count says whether this request won
// replaces a read of five tables in the one writer. When it changes no
// row, the slow path re-reads the state and says why. The number is bound
// as CAST(?5 AS TEXT) so that the statement is not re-prepared on every
// binding (see loadInvitationSQL). When the read found no interests, the
// claim also requires that there are still none (?8 is false), so that the
// writer needs neither to look for old interests nor to delete them: a
// separate lookup cost ~12 µs of the writer's time, a RETURNING clause
// saying the same ~16 µs (an ephemeral table), this condition ~0.
const claimSQL = `UPDATE invitations SET response = ?1, responded_at = ?2
WHERE id = ?3 AND response = ?4 AND EXISTS (SELECT 1 FROM contacts k
	WHERE k.id = invitations.contact_id AND k.erased_at IS NULL AND k.phone_e164 = CAST(?5 AS TEXT)
	AND (?6 = 0 OR (
		NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.email_hash = k.email_hash AND s.channel <> 'email')
		AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.phone_hash <> ''
			AND s.phone_hash = (CASE WHEN ?7 <> '' THEN ?7 ELSE k.phone_hash END) AND s.channel <> 'email'))))
	AND (?8 OR NOT EXISTS (SELECT 1 FROM contact_interests ci WHERE ci.contact_id = invitations.contact_id))`

// recordDecision writes a decision in one transaction: the consent event,
// the interests and number (on a confirmation) and the invitation's
// response. Repeating the same answer changes nothing.
//
// Everything that does not depend on the writer's state (the event, its
// evidence JSON and the rest of its digest's input, the phone's hash) is
// prepared here, before queueing for the one writer that bounds the page's
// throughput.
func (s *Server) recordDecision(ctx context.Context, inv *invitation, d decision) (outcome, error) {
	confirm := d.action == crm.ActionConfirmed
	ev := &crm.Event{
		ContactID:        inv.ContactID,
		Channel:          crm.ChannelWhatsApp,
		Action:           d.action,
		Method:           MethodConfirmPage,
		IP:               d.ip,
		UserAgent:        d.ua,
		Campaign:         inv.Campaign,
		InvitationID:     inv.ID,
		StatementVersion: d.statement.Version,
		StatementSHA256:  d.statement.SHA256,
		Evidence:         map[string]string{"page_language": d.lang, "statement_language": d.statement.Language},
	}
	if confirm {
		ev.Evidence["interests"] = strings.Join(d.interests, ",")
	}
	ev.PrepareDigest()
	hash := s.st.HashPhone(d.phone)
	// The claim can only succeed where the page's read predicts "recorded";
	// anything else goes straight to the slow path.
	claim := inv.Response != d.action && !inv.Erased && !(confirm && d.phone == "" && inv.Phone == "")
	var out outcome
	err := s.write(ctx, func(tx *crm.Tx) error {
		// The group commit may run this twice (crm.GroupCommit.Update):
		// each run decides anew and records its own time.
		out, ev.At = recorded, time.Time{}
		stored, won := inv.Phone, false
		if claim && !inv.expired(tx.Now) {
			res, err := tx.ExecCached(claimSQL, d.action, tx.NowText(), inv.ID, inv.Response, inv.Phone,
				confirm, hash, inv.HasInterests)
			if err != nil {
				return fmt.Errorf("close invitation %d: %w", inv.ID, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			won = n == 1
		}
		// Known to have no interests: the claim checked it.
		noInterests := won && !inv.HasInterests
		if !won {
			var err error
			if out, stored, err = decisionState(tx, inv, d, hash); err != nil || out != recorded {
				return err
			}
			if _, err := tx.ExecCached(`UPDATE invitations SET response = ?, responded_at = ? WHERE id = ?`,
				d.action, tx.NowText(), inv.ID); err != nil {
				return fmt.Errorf("close invitation %d: %w", inv.ID, err)
			}
		}
		// Interests and number first, the event last: the triggers that
		// keep whatsapp_audience (migration 0008) then build the contact's
		// row once, when the event makes it an opt-in, instead of building
		// it and then updating it for each interest and for the number
		// (~3-4 us of the writer's time per confirmation).
		if confirm {
			if err := tx.SetInterestsOneInsert(inv.ContactID, d.interests, noInterests); err != nil {
				return fmt.Errorf("set interests: %w", err)
			}
			if d.phone != "" && d.phone != stored {
				if err := tx.SetPhone(inv.ContactID, d.phone, d.phoneRaw); err != nil {
					return fmt.Errorf("set phone: %w", err)
				}
			}
		}
		return tx.AppendEvent(ev)
	})
	return out, err
}

// decisionState is the slow path of recordDecision: it reads the state in
// the writing transaction and says whether the answer is to be recorded
// (and the contact's stored number), or why not.
func decisionState(tx *crm.Tx, inv *invitation, d decision, phoneHash string) (outcome, string, error) {
	var response, expires, stored, current string
	var erased, isBlocked, isPhoneBlocked bool
	err := tx.QueryRowCached(decisionStateSQL, phoneHash, phoneHash, inv.ID).Scan(&response, &expires, &erased, &stored,
		&isBlocked, &isPhoneBlocked, &current)
	if errors.Is(err, sql.ErrNoRows) {
		return gone, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("read invitation %d: %w", inv.ID, err)
	}
	exp, _ := crm.ParseTime(expires)
	confirm := d.action == crm.ActionConfirmed
	switch {
	case erased:
		return gone, stored, nil
	case !exp.IsZero() && !tx.Now.Before(exp):
		return expired, stored, nil
	case isBlocked && confirm:
		return blocked, stored, nil
	case isPhoneBlocked && confirm:
		return phoneBlocked, stored, nil
	case confirm && d.phone == "" && stored == "":
		return phoneMissing, stored, nil
	case response == d.action && current == d.action:
		return repeated, stored, nil
	}
	return recorded, stored, nil
}

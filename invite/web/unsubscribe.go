package web

import (
	"context"
	"net/http"

	"github.com/repermit/repermit/crm"
)

// unsubscribeGet shows one button; the visit is logged, nothing else.
func (s *Server) unsubscribeGet(w http.ResponseWriter, r *http.Request) {
	inv, lang, ok := s.open(w, r)
	if !ok {
		return
	}
	s.recordVisit(r, inv, "unsubscribe")
	if inv.Erased {
		// Erasure suppressed the address for everything already.
		s.message(w, r, http.StatusOK, lang, "u_done_title", "u_done_text", s.opt.Business.Name)
		return
	}
	v := &view{Lang: lang, Business: s.opt.Business, Token: r.PathValue("token")}
	v.Title = v.T("u_title", s.opt.Business.Name)
	s.render(w, http.StatusOK, "unsubscribe", v)
}

// unsubscribePost withdraws email consent and suppresses the address at
// once: the RFC 8058 one-click POST of a mail client (body
// List-Unsubscribe=One-Click; no cookie, no redirect) or the page's button.
// It works on expired invitations too, and does not touch WhatsApp consent.
func (s *Server) unsubscribePost(w http.ResponseWriter, r *http.Request) {
	inv, lang, ok := s.open(w, r)
	if !ok || !s.readForm(w, r, lang) {
		return
	}
	var method string
	switch {
	case r.PostForm.Get("via") == "page":
		method = MethodUnsubscribePage
	case r.PostForm.Get("List-Unsubscribe") == "One-Click":
		method = MethodOneClick
	default:
		s.message(w, r, http.StatusBadRequest, lang, "bad_title", "bad_text")
		return
	}
	if err := s.unsubscribe(r.Context(), inv, method, s.clientIP(r), clip(r.UserAgent(), 1024)); err != nil {
		s.fail(w, r, lang, err)
		return
	}
	s.message(w, r, http.StatusOK, lang, "u_done_title", "u_done_text", s.opt.Business.Name)
}

// unsubscribe suppresses the contact's address for email, records email
// consent withdrawn (unless it already is) and marks the invitation
// unsubscribed when it has no WhatsApp answer (that answer stays the
// invitation's outcome). Repeating it changes nothing.
func (s *Server) unsubscribe(ctx context.Context, inv *invitation, method, ip, ua string) error {
	return s.write(ctx, func(tx *crm.Tx) error {
		var email string
		var erased bool
		if err := tx.QueryRowCached(`SELECT coalesce(email, ''), erased_at IS NOT NULL FROM contacts WHERE id = ?`,
			inv.ContactID).Scan(&email, &erased); err != nil {
			return err
		}
		if erased || email == "" {
			return nil
		}
		if _, err := tx.SuppressEmail(email, crm.ReasonUnsubscribed, method); err != nil {
			return err
		}
		cur, err := tx.CurrentConsent(inv.ContactID, crm.ChannelEmail)
		if err != nil {
			return err
		}
		if cur.Action != crm.ActionWithdrawn {
			if err := tx.AppendEvent(&crm.Event{
				ContactID: inv.ContactID, Channel: crm.ChannelEmail, Action: crm.ActionWithdrawn, Method: method,
				IP: ip, UserAgent: ua, Campaign: inv.Campaign, InvitationID: inv.ID,
			}); err != nil {
				return err
			}
		}
		_, err = tx.ExecCached(`UPDATE invitations SET response = 'unsubscribed', responded_at = ? WHERE id = ? AND response = ''`,
			crm.FormatTime(tx.Now), inv.ID)
		return err
	})
}

package web

import (
	"context"
	"net/http"
	"slices"

	"github.com/repermit/repermit/crm"
	"github.com/repermit/repermit/invite"
)

// preferencesView shows the contact's WhatsApp state and interests: the
// campaign's interests plus any the contact chose elsewhere, the current
// ones ticked.
func (s *Server) preferencesView(ctx context.Context, inv *invitation, lang, token string) (*view, []invite.Interest, error) {
	current, err := s.st.Interests(ctx, inv.ContactID)
	if err != nil {
		return nil, nil, err
	}
	options := slices.Clone(inv.Settings.Interests)
	for _, c := range current {
		if !slices.ContainsFunc(options, func(o invite.Interest) bool { return o.Name == c }) {
			options = append(options, invite.Interest{Name: c})
		}
	}
	v := &view{Lang: lang, Business: s.opt.Business, Token: token}
	v.Title = v.T("p_title", s.opt.Business.Name)
	v.WhatsAppOn = inv.WhatsApp == crm.ActionConfirmed && !inv.Blocked && !inv.PhoneBlocked && inv.Phone != ""
	v.MaskedPhone = maskPhone(inv.Phone)
	v.CanOptIn = !v.WhatsAppOn && !inv.Blocked && !inv.expired(s.st.Now())
	for _, o := range options {
		v.Interests = append(v.Interests, choice{Name: o.Name, Label: o.Label(lang), Checked: slices.Contains(current, o.Name)})
	}
	return v, options, nil
}

// preferencesGet shows the preference page and logs the visit.
func (s *Server) preferencesGet(w http.ResponseWriter, r *http.Request) {
	inv, lang, ok := s.open(w, r)
	if !ok {
		return
	}
	s.recordVisit(r, inv, "preferences")
	if inv.Erased {
		s.message(w, r, http.StatusGone, lang, "gone_title", "gone_text")
		return
	}
	v, _, err := s.preferencesView(r.Context(), inv, lang, r.PathValue("token"))
	if err != nil {
		s.fail(w, r, lang, err)
		return
	}
	s.render(w, http.StatusOK, "preferences", v)
}

// preferencesPost saves the chosen interests (action=save) or withdraws
// WhatsApp consent (action=withdraw, recorded as withdrawn by the
// preference page), then shows the page again. Works after the invitation
// expired: stopping must stay as easy as starting.
func (s *Server) preferencesPost(w http.ResponseWriter, r *http.Request) {
	inv, lang, ok := s.open(w, r)
	if !ok {
		return
	}
	if inv.Erased {
		s.message(w, r, http.StatusGone, lang, "gone_title", "gone_text")
		return
	}
	if !s.readForm(w, r, lang) {
		return
	}
	token := r.PathValue("token")
	_, options, err := s.preferencesView(r.Context(), inv, lang, token)
	if err != nil {
		s.fail(w, r, lang, err)
		return
	}
	var notice string
	ip, ua := s.clientIP(r), clip(r.UserAgent(), 1024)
	switch r.PostForm.Get("action") {
	case "save":
		chosen := offered(r.PostForm["interest"], options)
		err = s.write(r.Context(), func(tx *crm.Tx) error { return tx.SetInterests(inv.ContactID, chosen) })
		notice = tr(lang, "p_saved")
	case "withdraw":
		err = s.write(r.Context(), func(tx *crm.Tx) error {
			cur, err := tx.CurrentConsent(inv.ContactID, crm.ChannelWhatsApp)
			if err != nil || cur.Action != crm.ActionConfirmed {
				return err
			}
			return tx.AppendEvent(&crm.Event{
				ContactID: inv.ContactID, Channel: crm.ChannelWhatsApp, Action: crm.ActionWithdrawn,
				Method: MethodPreferencePage, IP: ip, UserAgent: ua, Campaign: inv.Campaign, InvitationID: inv.ID,
			})
		})
		notice = tr(lang, "p_withdrawn", s.opt.Business.Name)
	default:
		s.message(w, r, http.StatusBadRequest, lang, "bad_title", "bad_text")
		return
	}
	if err != nil {
		s.fail(w, r, lang, err)
		return
	}
	if inv, err = s.load(r.Context(), token); err != nil {
		s.fail(w, r, lang, err)
		return
	}
	v, _, err := s.preferencesView(r.Context(), inv, lang, token)
	if err != nil {
		s.fail(w, r, lang, err)
		return
	}
	v.Notice = notice
	s.render(w, http.StatusOK, "preferences", v)
}

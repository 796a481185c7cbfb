package web

import (
	"bytes"
	"errors"
	"net/http"

	"github.com/repermit/repermit/crm"
)

// view is the data of every page. T translates into the page's language.
type view struct {
	Lang     string
	Title    string
	Business Business
	Token    string

	// message pages
	Heading, Text string

	// confirmation page
	Hello         string
	Statement     crm.Statement
	MaskedPhone   string
	NeedPhone     bool
	Phone         string // as typed, echoed back on an error
	PhoneError    string
	DecisionError string
	Interests     []choice
	Answered      string

	// success page
	Confirmed    bool
	WhatsAppLink string
	Receipt      bool // link the consent receipt
	Done         *doneTexts

	// PrivacyText is the privacy link's text (render fills it).
	PrivacyText string

	// preference page
	WhatsAppOn bool
	CanOptIn   bool
	Notice     string
}

// doneTexts are the success page's fixed texts in one language. The page
// used to call T for each from the template; a template method call goes
// through reflection, and those calls were most of the page's ~110 µs.
type doneTexts struct {
	OpenWhatsApp, Stop, Receipt, Manage, Unsubscribe string
}

// doneTextsFor returns the success page's texts in lang.
func doneTextsFor(lang string) *doneTexts {
	return &doneTexts{
		OpenWhatsApp: tr(lang, "open_whatsapp"),
		Stop:         tr(lang, "yes_stop"),
		Receipt:      tr(lang, "receipt"),
		Manage:       tr(lang, "manage"),
		Unsubscribe:  tr(lang, "unsub_link"),
	}
}

// choice is one interest checkbox.
type choice struct {
	Name, Label string
	Checked     bool
}

// T is the page text key in the page's language, formatted with args.
func (v *view) T(key string, args ...any) string { return tr(v.Lang, key, args...) }

// render executes a page into a buffer first, so that a template error
// never sends half a page with a 200.
func (s *Server) render(w http.ResponseWriter, status int, page string, v *view) {
	if s.opt.Business.PrivacyURL != "" && v.PrivacyText == "" {
		v.PrivacyText = v.T("privacy")
	}
	var buf bytes.Buffer
	if err := s.pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		s.log.Error("render page", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// message renders a page that only says something (errors, gone, done).
func (s *Server) message(w http.ResponseWriter, r *http.Request, status int, lang, titleKey, textKey string, args ...any) {
	v := &view{Lang: lang, Business: s.opt.Business}
	v.Heading = v.T(titleKey)
	v.Title = v.Heading
	v.Text = v.T(textKey, args...)
	s.render(w, status, "message", v)
}

// fail answers a request that failed on our side. The error is logged
// (it carries no personal data: ids only); the person is told nothing was
// saved.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, lang string, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	s.log.Error("request failed", "route", r.Pattern, "err", err)
	s.message(w, r, http.StatusInternalServerError, lang, "error_title", "error_text")
}

// open loads the invitation of the path's token and picks the language; it
// answers 404 (unknown token) or 500 itself and then returns ok=false.
func (s *Server) open(w http.ResponseWriter, r *http.Request) (*invitation, string, bool) {
	inv, err := s.load(r.Context(), r.PathValue("token"))
	if errors.Is(err, errUnknownToken) {
		s.message(w, r, http.StatusNotFound, pickLang("", r.Header.Get("Accept-Language")), "nf_title", "nf_text")
		return nil, "", false
	}
	if err != nil {
		s.fail(w, r, pickLang("", r.Header.Get("Accept-Language")), err)
		return nil, "", false
	}
	return inv, pickLang(inv.Language, r.Header.Get("Accept-Language")), true
}

// readForm parses the body, answering 413 or 400 itself on failure.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request, lang string) bool {
	status, err := parseForm(r, s.opt.MaxBodyBytes)
	switch {
	case err == nil:
		return true
	case status == http.StatusRequestEntityTooLarge:
		s.message(w, r, status, lang, "big_title", "big_text")
	default:
		s.message(w, r, status, lang, "bad_title", "bad_text")
	}
	return false
}

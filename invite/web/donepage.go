package web

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/repermit/repermit/invite"
)

// The success page is the one page every confirmation renders, and
// executing its template costs some twenty reflective calls (html/template
// adds an escaper to every action): ~40 µs of the ~300 µs of CPU a
// confirmation costs the server. Only two things on it differ between
// people who answer the same way in the same language: the token in its
// links and the sentence with their masked number. So the page is rendered
// once per language and answer with marked holes in their place, and each
// request fills the holes: the token as it is (validToken admits only
// characters that every escaper leaves alone) and the sentence escaped as
// html/template escapes HTML text (appendHTMLText). A page whose holes are
// not where they should be is never cached; render runs instead.

// Hole markers: letters only, so that no escaper changes them.
const (
	tokenHole = "zqTokenHoleXq"
	textHole  = "zqTextHoleXq"
)

// doneKey is what the cached success page depends on besides the holes
// (the business and its options are fixed for the server's life).
type doneKey struct {
	lang      string
	confirmed bool
}

// donePage is the success page cut at its holes: chunks[0], hole 0,
// chunks[1], ...; holes[i] is tokenHole or textHole. size is the length of
// all chunks, tokens the number of token holes.
type donePage struct {
	chunks []string
	holes  []string
	size   int
	tokens int
}

// appendHTMLText appends s escaped for HTML text exactly as html/template
// escapes a string there (its htmlEscaper): NUL becomes U+FFFD and " & ' +
// < > character references; nothing else changes, invalid UTF-8 included.
// Every byte it replaces is ASCII, which never occurs inside a multi-byte
// rune, so a byte loop is the escaper's rune loop. Executing a one-action
// template for this cost ~9 µs per confirmation (reflection, an escaper
// call through text/template); this costs well under one.
func appendHTMLText(dst []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var repl string
		switch s[i] {
		case 0:
			repl = "\uFFFD"
		case '"':
			repl = "&#34;"
		case '&':
			repl = "&amp;"
		case '\'':
			repl = "&#39;"
		case '+':
			repl = "&#43;"
		case '<':
			repl = "&lt;"
		case '>':
			repl = "&gt;"
		default:
			continue
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, repl...)
		last = i + 1
	}
	return append(dst, s[last:]...)
}

// doneText is the success page's sentence (doneView's Text).
func (s *Server) doneText(lang string, confirmed bool, phone string) string {
	if confirmed {
		return tr(lang, "yes_text", s.opt.Business.Name, maskPhone(phone))
	}
	return tr(lang, "no_text", s.opt.Business.Name)
}

// writeDone writes the success page of an answer (confirmed or not) in
// lang, for token, with the number the messages will go to: the cut page
// with its holes filled, in one Write with its Content-Length, from a
// pooled buffer. It is byte for byte what render writes for doneView (a
// test checks it), and falls back to render when the page cannot be cut
// or the token is not one.
func (s *Server) writeDone(w http.ResponseWriter, lang, token string, confirmed bool, phone string) {
	p := s.donePageFor(lang, confirmed)
	if p == nil || !validToken(token) {
		s.render(w, http.StatusOK, "done", s.doneView(lang, token, confirmed, phone))
		return
	}
	text := s.doneText(lang, confirmed, phone)
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	buf := slices.Grow((*bp)[:0], p.size+p.tokens*len(token)+len(text)+len(text)/2)
	for i, c := range p.chunks {
		buf = append(buf, c...)
		if i < len(p.holes) {
			if p.holes[i] == tokenHole {
				buf = append(buf, token...)
			} else {
				buf = appendHTMLText(buf, text)
			}
		}
	}
	h := w.Header()
	h["Content-Type"] = []string{"text/html; charset=utf-8"}
	h["Content-Length"] = []string{strconv.Itoa(len(buf))}
	w.WriteHeader(http.StatusOK)
	w.Write(buf)
	// The server copied it into its connection's buffer: reuse it. A page
	// is ~2 KB; an oversized buffer (a huge name) is dropped.
	if cap(buf) <= 16<<10 {
		*bp = buf
		s.bufs.Put(bp)
	}
}

// donePageFor returns the cut page for the language and answer, building
// it on first use; nil when it cannot be cut safely.
func (s *Server) donePageFor(lang string, confirmed bool) *donePage {
	key := doneKey{lang: lang, confirmed: confirmed}
	s.mu.Lock()
	p, ok := s.done[key]
	s.mu.Unlock()
	if ok {
		return p
	}
	probe := s.doneView(lang, tokenHole, confirmed, "")
	probe.Text = textHole
	if probe.PrivacyText == "" && s.opt.Business.PrivacyURL != "" {
		probe.PrivacyText = probe.T("privacy")
	}
	var buf bytes.Buffer
	if err := s.pages["done"].ExecuteTemplate(&buf, "layout", probe); err != nil {
		return nil
	}
	p = cutHoles(buf.String())
	s.mu.Lock()
	s.done[key] = p // nil too: do not try again
	s.mu.Unlock()
	return p
}

// cutHoles cuts page at its hole markers. It returns nil unless the text
// hole occurs exactly once and the token hole at least once.
func cutHoles(page string) *donePage {
	if strings.Count(page, textHole) != 1 || strings.Count(page, tokenHole) == 0 {
		return nil
	}
	p := &donePage{}
	p.chunks, p.holes = invite.CutAt(page, tokenHole, textHole)
	for _, c := range p.chunks {
		p.size += len(c)
	}
	p.tokens = len(p.holes) - 1
	return p
}

package web

import (
	"bytes"
	"html/template"
	"net/http"
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
// characters that every escaper leaves alone) and the sentence through a
// one-action template in the same HTML text context, which escapes it
// exactly as the full template would. A page whose holes are not where
// they should be is never cached; render runs instead.

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
// chunks[1], ...; holes[i] is tokenHole or textHole.
type donePage struct {
	chunks []string
	holes  []string
}

// newTextEscaper returns a template that escapes a string for HTML text,
// as html/template does there.
func newTextEscaper() *template.Template {
	return template.Must(template.New("text").Parse(`{{.}}`))
}

// renderDone writes the success page v (built by confirmPost).
func (s *Server) renderDone(w http.ResponseWriter, v *view) {
	p := s.donePageFor(v)
	if p == nil || !validToken(v.Token) {
		s.render(w, http.StatusOK, "done", v)
		return
	}
	var text bytes.Buffer
	if err := s.textEscaper.Execute(&text, v.Text); err != nil {
		s.render(w, http.StatusOK, "done", v)
		return
	}
	var buf bytes.Buffer
	buf.Grow(2048)
	for i, c := range p.chunks {
		buf.WriteString(c)
		if i < len(p.holes) {
			if p.holes[i] == tokenHole {
				buf.WriteString(v.Token)
			} else {
				buf.Write(text.Bytes())
			}
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}

// donePageFor returns the cut page for v's language and answer, building it
// on first use; nil when it cannot be cut safely.
func (s *Server) donePageFor(v *view) *donePage {
	key := doneKey{lang: v.Lang, confirmed: v.Confirmed}
	s.mu.Lock()
	p, ok := s.done[key]
	s.mu.Unlock()
	if ok {
		return p
	}
	probe := *v
	probe.Token, probe.Text = tokenHole, textHole
	if probe.PrivacyText == "" && s.opt.Business.PrivacyURL != "" {
		probe.PrivacyText = probe.T("privacy")
	}
	var buf bytes.Buffer
	if err := s.pages["done"].ExecuteTemplate(&buf, "layout", &probe); err != nil {
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
	return p
}

package web

import (
	"html/template"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/repermit/repermit/crm"
)

// doneTestServer is a server with just what the success page needs.
func doneTestServer(receipt bool) *Server {
	s := &Server{pages: parsePages(), done: map[doneKey]*donePage{},
		opt: Options{Business: Business{Name: "Kaffee & Co <b>", Address: "Main St 1", PrivacyURL: "https://example.com/privacy?a=1&b=2", WhatsAppNumber: "+4915123456789"}}}
	if receipt {
		s.opt.Receipt = &crm.ReceiptOptions{}
	}
	return s
}

// TestCachedSuccessPageIsTheTemplatesPage: the success page filled in from
// its cut copy is byte for byte what the template renders, in every
// language and answer, with and without a receipt, for several people.
func TestCachedSuccessPageIsTheTemplatesPage(t *testing.T) {
	for _, receipt := range []bool{false, true} {
		s := doneTestServer(receipt)
		for _, lang := range []string{"en", "de"} {
			for _, confirmed := range []bool{true, false} {
				for _, c := range []struct{ token, phone string }{
					{"abcdefghijklmnopqrstuvwxyzABCDEF", "+4915123456678"},
					{"Zz-_0123456789abcdefghijklmnopqr", "+14155550123"},
					{"short", "+447700900123"}, // not a token: rendered by the template
				} {
					want := httptest.NewRecorder()
					s.render(want, 200, "done", s.doneView(lang, c.token, confirmed, c.phone))
					got := httptest.NewRecorder()
					s.writeDone(got, lang, c.token, confirmed, c.phone)
					if got.Body.String() != want.Body.String() || got.Code != want.Code ||
						got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
						t.Fatalf("receipt %v %s confirmed %v %s: cached page differs:\n%s\nwant\n%s",
							receipt, lang, confirmed, c.token, got.Body, want.Body)
					}
				}
			}
		}
		if len(s.done) != 4 {
			t.Errorf("%d cached pages, want 4 (two languages, two answers)", len(s.done))
		}
		for k, p := range s.done {
			if p == nil {
				t.Errorf("%+v: page could not be cut", k)
			}
		}
	}
}

// BenchmarkRenderDone is the success page's rendering alone (the
// confirmation page's HTTP side): the template, and the cut copy.
func BenchmarkRenderDone(b *testing.B) {
	s := doneTestServer(true)
	b.Run("template", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.render(httptest.NewRecorder(), 200, "done", s.doneView("en", "abcdefghijklmnopqrstuvwxyzABCDEF", true, "+4915123456678"))
		}
	})
	b.Run("cut", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.writeDone(httptest.NewRecorder(), "en", "abcdefghijklmnopqrstuvwxyzABCDEF", true, "+4915123456678")
		}
	})
}

// templateText escapes s as html/template does in HTML text.
func templateText(t testing.TB, s string) string {
	var b strings.Builder
	if err := template.Must(template.New("t").Parse(`<p>{{.}}</p>`)).Execute(&b, s); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(strings.TrimPrefix(b.String(), "<p>"), "</p>")
}

// FuzzAppendHTMLText: the success page's escaper says what html/template
// says, for any string (NUL, quotes, invalid UTF-8, non-characters).
func FuzzAppendHTMLText(f *testing.F) {
	for _, s := range []string{"", "plain", `Kaffee & Co <b>"x"</b> 'y' +49`, "a\x00b", "\xff\xfe<", "\ufdd0\uffff+", "ü€😀&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(appendHTMLText([]byte("pre"), s)), "pre"+templateText(t, s); got != want {
			t.Fatalf("%q: got %q, want %q", s, got, want)
		}
	})
}

package web

import (
	"net/http/httptest"
	"testing"

	"github.com/repermit/repermit/crm"
)

// BenchmarkRenderDone is the success page's rendering alone (the
// confirmation page's HTTP side).
func BenchmarkRenderDone(b *testing.B) {
	s := &Server{pages: parsePages(), opt: Options{Business: Business{Name: "Bakery Example", Address: "Main St 1", PrivacyURL: "https://example.com/privacy", WhatsAppNumber: "+4915123456789"}}}
	s.opt.Receipt = &crm.ReceiptOptions{}
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		done := &view{Lang: "en", Business: s.opt.Business, Token: "abcdefghijklmnopqrstuvwxyzABCDEF", Confirmed: true, Done: doneTextsFor("en")}
		done.Title = done.T("yes_title")
		done.MaskedPhone = maskPhone("+4915123456678")
		done.Text = done.T("yes_text", s.opt.Business.Name, done.MaskedPhone)
		done.WhatsAppLink = waLink(s.opt.Business.WhatsAppNumber)
		done.Receipt = true
		s.render(w, 200, "done", done)
	}
}

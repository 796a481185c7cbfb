package web

import (
	"encoding/json"
	"net/http"

	"github.com/repermit/repermit/crm"
)

// receiptGet gives the person a Kantara consent receipt (v1.1) of their
// current WhatsApp confirmation, linked from the success page. It reads
// only: a scanner fetching it changes nothing.
func (s *Server) receiptGet(w http.ResponseWriter, r *http.Request) {
	inv, lang, ok := s.open(w, r)
	if !ok {
		return
	}
	if s.opt.Receipt == nil || inv.Erased || inv.WhatsApp != crm.ActionConfirmed {
		s.message(w, r, http.StatusNotFound, lang, "nf_title", "no_receipt")
		return
	}
	consent, err := s.st.Consent(r.Context(), inv.ContactID)
	if err != nil {
		s.fail(w, r, lang, err)
		return
	}
	rc, err := s.st.ReceiptFor(r.Context(), consent[crm.ChannelWhatsApp].EventID, *s.opt.Receipt)
	if err != nil {
		s.fail(w, r, lang, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="consent-receipt.json"`)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(rc)
}

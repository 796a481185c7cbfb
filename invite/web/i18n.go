package web

import (
	"fmt"
	"strings"
	"time"

	"golang.org/x/text/language"
)

// messages are the page texts per language (read-only). Every language has every key (a test checks
// it); a missing language falls back to English.
var messages = map[string]map[string]string{
	"en": {
		"confirm_title":      "Messages from %s on WhatsApp?",
		"hello":              "Hi %s,",
		"hello_anon":         "Hello,",
		"intro":              "%s would like to send you messages on WhatsApp. You already get their emails; WhatsApp is a separate choice, and it is entirely up to you.",
		"statement_heading":  "What you agree to",
		"phone_heading":      "Your WhatsApp number",
		"phone_have":         "We would message you at %s.",
		"phone_other":        "Use a different number (optional)",
		"phone_missing":      "Mobile number you use WhatsApp with",
		"phone_hint":         "With country code, for example +49 151 23456789.",
		"interests_heading":  "What would you like to hear about? (optional)",
		"yes":                "Yes, message me on WhatsApp",
		"no":                 "No thanks",
		"nothing_until":      "Nothing changes until you press one of the buttons. You can stop at any time.",
		"answered_confirmed": "You said yes on %s. You can change your answer here.",
		"answered_declined":  "You said no thanks on %s. You can change your answer here.",
		"answered_unsub":     "You unsubscribed from emails on %s. Your WhatsApp choice is still open.",
		"err_heading":        "Please check your answer",
		"err_phone_invalid":  "That does not look like a mobile number. Please check it and include the country code, for example +49 151 23456789.",
		"err_phone_missing":  "Please enter the mobile number you use WhatsApp with, so that we can message you.",
		"err_phone_blocked":  "This number asked us not to send it WhatsApp messages. Please use another number, or contact us.",
		"err_decision":       "Please choose “Yes, message me on WhatsApp” or “No thanks”.",
		"yes_title":          "Thank you, you are in!",
		"yes_text":           "%s will message you on WhatsApp at %s.",
		"yes_stop":           "To stop, reply STOP in WhatsApp at any time, or change your preferences.",
		"open_whatsapp":      "Open WhatsApp",
		"receipt":            "Download your consent receipt (a record of what you agreed to, and when)",
		"no_receipt":         "There is no WhatsApp confirmation to give a receipt for.",
		"manage":             "Change your preferences",
		"no_title":           "No problem",
		"no_text":            "%s will not message you on WhatsApp. Nothing else changes.",
		"unsub_link":         "Unsubscribe from emails",
		"u_title":            "Unsubscribe from the emails of %s?",
		"u_text":             "You will get no more emails from %s. This does not change your WhatsApp choice.",
		"u_button":           "Unsubscribe",
		"u_done_title":       "You are unsubscribed",
		"u_done_text":        "%s will send you no more emails. Your WhatsApp choice is unchanged.",
		"p_title":            "Your preferences for %s",
		"p_on":               "You get WhatsApp messages from %s at %s.",
		"p_off":              "You do not get WhatsApp messages from %s.",
		"p_interests":        "Topics",
		"p_save":             "Save my topics",
		"p_withdraw":         "Stop WhatsApp messages",
		"p_saved":            "Saved. Thank you.",
		"p_withdrawn":        "Done: %s will send you no more WhatsApp messages.",
		"p_optin":            "Would you like messages on WhatsApp?",
		"nf_title":           "We could not find this link",
		"nf_text":            "The link may be incomplete: some email apps cut long links. Please open it again from the email, or copy the whole link into your browser.",
		"exp_title":          "This invitation has expired",
		"exp_text":           "This invitation from %s expired on %s, so it cannot be used any more. Nothing was changed. If you would still like their messages on WhatsApp, reply to their email.",
		"gone_title":         "This link no longer works",
		"gone_text":          "Nothing was changed.",
		"blocked_title":      "We will not contact you",
		"blocked_text":       "You asked %s not to contact you, so this invitation cannot be accepted. If that was a mistake, please contact them directly.",
		"rate_title":         "Too many attempts",
		"rate_text":          "Please wait a minute and try again. Nothing was changed.",
		"big_title":          "That was too much data",
		"big_text":           "The form sent more than this page accepts. Nothing was changed; please go back and try again.",
		"bad_title":          "Something is missing",
		"bad_text":           "This request was not understood. Nothing was changed; please use the buttons on the page.",
		"error_title":        "Something went wrong",
		"error_text":         "Your answer was not saved. Please try again in a minute.",
		"privacy":            "Privacy policy",
		"why":                "You get this because you are on the email list of %s.",
	},
	"de": {
		"confirm_title":      "Nachrichten von %s auf WhatsApp?",
		"hello":              "Hallo %s,",
		"hello_anon":         "Hallo,",
		"intro":              "%s möchte Ihnen Nachrichten auf WhatsApp senden. Die E-Mails bekommen Sie schon; WhatsApp ist eine eigene Entscheidung, und sie liegt ganz bei Ihnen.",
		"statement_heading":  "Dem stimmen Sie zu",
		"phone_heading":      "Ihre WhatsApp-Nummer",
		"phone_have":         "Wir würden Ihnen an %s schreiben.",
		"phone_other":        "Andere Nummer verwenden (optional)",
		"phone_missing":      "Handynummer, mit der Sie WhatsApp nutzen",
		"phone_hint":         "Mit Ländervorwahl, zum Beispiel +49 151 23456789.",
		"interests_heading":  "Worüber möchten Sie Nachrichten bekommen? (optional)",
		"yes":                "Ja, schreiben Sie mir auf WhatsApp",
		"no":                 "Nein, danke",
		"nothing_until":      "Es ändert sich nichts, bevor Sie einen der Knöpfe drücken. Sie können jederzeit aufhören.",
		"answered_confirmed": "Sie haben am %s zugestimmt. Hier können Sie Ihre Antwort ändern.",
		"answered_declined":  "Sie haben am %s abgelehnt. Hier können Sie Ihre Antwort ändern.",
		"answered_unsub":     "Sie haben sich am %s von den E-Mails abgemeldet. Ihre Entscheidung zu WhatsApp ist noch offen.",
		"err_heading":        "Bitte prüfen Sie Ihre Angaben",
		"err_phone_invalid":  "Das sieht nicht nach einer Handynummer aus. Bitte prüfen Sie sie und geben Sie die Ländervorwahl an, zum Beispiel +49 151 23456789.",
		"err_phone_missing":  "Bitte geben Sie die Handynummer an, mit der Sie WhatsApp nutzen, damit wir Ihnen schreiben können.",
		"err_phone_blocked":  "Für diese Nummer wurde gebeten, keine WhatsApp-Nachrichten zu senden. Bitte nutzen Sie eine andere Nummer oder kontaktieren Sie uns.",
		"err_decision":       "Bitte wählen Sie „Ja, schreiben Sie mir auf WhatsApp“ oder „Nein, danke“.",
		"yes_title":          "Danke, Sie sind dabei!",
		"yes_text":           "%s schreibt Ihnen auf WhatsApp an %s.",
		"yes_stop":           "Zum Beenden antworten Sie jederzeit STOP in WhatsApp oder ändern Ihre Einstellungen.",
		"open_whatsapp":      "WhatsApp öffnen",
		"receipt":            "Ihre Einwilligungsquittung herunterladen (was Sie wann erlaubt haben)",
		"no_receipt":         "Es gibt keine WhatsApp-Bestätigung, für die wir eine Quittung ausstellen könnten.",
		"manage":             "Einstellungen ändern",
		"no_title":           "Kein Problem",
		"no_text":            "%s schreibt Ihnen nicht auf WhatsApp. Sonst ändert sich nichts.",
		"unsub_link":         "Von den E-Mails abmelden",
		"u_title":            "Von den E-Mails von %s abmelden?",
		"u_text":             "Sie bekommen dann keine E-Mails mehr von %s. Ihre Entscheidung zu WhatsApp bleibt, wie sie ist.",
		"u_button":           "Abmelden",
		"u_done_title":       "Sie sind abgemeldet",
		"u_done_text":        "%s sendet Ihnen keine E-Mails mehr. Ihre Entscheidung zu WhatsApp bleibt, wie sie ist.",
		"p_title":            "Ihre Einstellungen bei %s",
		"p_on":               "Sie bekommen WhatsApp-Nachrichten von %s an %s.",
		"p_off":              "Sie bekommen keine WhatsApp-Nachrichten von %s.",
		"p_interests":        "Themen",
		"p_save":             "Themen speichern",
		"p_withdraw":         "WhatsApp-Nachrichten beenden",
		"p_saved":            "Gespeichert. Danke.",
		"p_withdrawn":        "Erledigt: %s sendet Ihnen keine WhatsApp-Nachrichten mehr.",
		"p_optin":            "Möchten Sie Nachrichten auf WhatsApp?",
		"nf_title":           "Diesen Link kennen wir nicht",
		"nf_text":            "Der Link ist vielleicht unvollständig: Manche E-Mail-Programme kürzen lange Links. Bitte öffnen Sie ihn noch einmal aus der E-Mail oder kopieren Sie den ganzen Link in Ihren Browser.",
		"exp_title":          "Diese Einladung ist abgelaufen",
		"exp_text":           "Diese Einladung von %s ist am %s abgelaufen und kann nicht mehr genutzt werden. Es wurde nichts geändert. Wenn Sie trotzdem Nachrichten auf WhatsApp möchten, antworten Sie einfach auf die E-Mail.",
		"gone_title":         "Dieser Link funktioniert nicht mehr",
		"gone_text":          "Es wurde nichts geändert.",
		"blocked_title":      "Wir werden Sie nicht kontaktieren",
		"blocked_text":       "Sie haben %s gebeten, Sie nicht zu kontaktieren; deshalb kann diese Einladung nicht angenommen werden. Falls das ein Irrtum war, wenden Sie sich bitte direkt an das Unternehmen.",
		"rate_title":         "Zu viele Versuche",
		"rate_text":          "Bitte warten Sie eine Minute und versuchen Sie es erneut. Es wurde nichts geändert.",
		"big_title":          "Das waren zu viele Daten",
		"big_text":           "Das Formular hat mehr gesendet, als diese Seite annimmt. Es wurde nichts geändert; bitte gehen Sie zurück und versuchen Sie es erneut.",
		"bad_title":          "Hier fehlt etwas",
		"bad_text":           "Diese Anfrage wurde nicht verstanden. Es wurde nichts geändert; bitte nutzen Sie die Knöpfe auf der Seite.",
		"error_title":        "Etwas ist schiefgegangen",
		"error_text":         "Ihre Antwort wurde nicht gespeichert. Bitte versuchen Sie es in einer Minute erneut.",
		"privacy":            "Datenschutzerklärung",
		"why":                "Sie bekommen dies, weil Sie auf der E-Mail-Liste von %s stehen.",
	},
}

// pickLang chooses the page language: the contact's own language when we
// have its texts, else the browser's preference, else English.
func pickLang(contactLang, acceptLanguage string) string {
	base := strings.ToLower(strings.TrimSpace(contactLang))
	if i := strings.IndexAny(base, "-_"); i > 0 {
		base = base[:i]
	}
	if _, ok := messages[base]; ok {
		return base
	}
	if acceptLanguage != "" {
		// Tags come sorted by the browser's preference (q values).
		tags, _, _ := language.ParseAcceptLanguage(acceptLanguage)
		for _, t := range tags {
			b, _ := t.Base()
			if _, ok := messages[b.String()]; ok {
				return b.String()
			}
		}
	}
	return "en"
}

// tr formats the message key of lang with args.
func tr(lang, key string, args ...any) string {
	m, ok := messages[lang][key]
	if !ok {
		m = messages["en"][key]
	}
	if len(args) == 0 {
		return m
	}
	return fmt.Sprintf(m, args...)
}

// formatDate is a date as people of lang write it.
func formatDate(lang string, t time.Time) string {
	if lang == "de" {
		return t.Format("02.01.2006")
	}
	return t.Format("2 Jan 2006")
}

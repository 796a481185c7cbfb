// Package invite holds campaigns, invitation tokens, the rendering of the
// invitation email, its transports (outbox, SMTP), the send pipeline and
// reminders.
package invite

// Interest is one interest a campaign offers, with a label per language
// (falling back to the name itself).
type Interest struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Label returns the interest's label in lang, else English, else its name.
func (i Interest) Label(lang string) string {
	if l := i.Labels[lang]; l != "" {
		return l
	}
	if l := i.Labels["en"]; l != "" {
		return l
	}
	return i.Name
}

// Settings is the JSON stored in campaigns.settings. The confirmation page
// reads Interests from it; the rest is the invite package's own.
type Settings struct {
	Interests []Interest `json:"interests"`
	// Subjects and ReminderSubjects per language ("en" is the fallback).
	Subjects         map[string]string `json:"subjects,omitempty"`
	ReminderSubjects map[string]string `json:"reminder_subjects,omitempty"`
	// TemplateDir overrides the embedded templates when set.
	TemplateDir string `json:"template_dir,omitempty"`
	// Refresh marks a campaign that asks people whose WhatsApp consent has
	// aged to confirm it again (see FlagRefresh).
	Refresh bool `json:"refresh,omitempty"`
}

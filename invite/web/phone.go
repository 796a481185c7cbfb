package web

import (
	"errors"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Why a number given on the page was refused; each maps to a message the
// person can act on.
var (
	errPhoneInvalid = errors.New("not a valid phone number")
	errPhoneMissing = errors.New("no phone number")
)

// parsePhone turns what a person typed into E.164. region is the contact's
// country (ISO 3166 alpha-2) for numbers typed without a country code.
// Only numbers that can be mobile numbers are accepted: WhatsApp needs one.
func parsePhone(raw, region string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", errPhoneMissing
	}
	if len(raw) > 40 {
		return "", errPhoneInvalid
	}
	region = strings.ToUpper(strings.TrimSpace(region))
	num, err := phonenumbers.Parse(raw, region)
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return "", errPhoneInvalid
	}
	switch phonenumbers.GetNumberType(num) {
	case phonenumbers.FIXED_LINE, phonenumbers.TOLL_FREE, phonenumbers.PREMIUM_RATE,
		phonenumbers.SHARED_COST, phonenumbers.PAGER, phonenumbers.UAN, phonenumbers.VOICEMAIL:
		return "", errPhoneInvalid
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// maskPhone shows enough of an E.164 number for its owner to recognise it
// and too little for anyone else to use: "+49 151 ••• 678".
func maskPhone(e164 string) string {
	if len(e164) < 2 || e164[0] != '+' {
		return ""
	}
	digits := e164[1:]
	// Country calling codes are prefix-free, so the first prefix that is
	// one is the country code. (A map lookup: parsing the whole number
	// costs more than the rest of the page.)
	ccLen := 0
	for n := 1; n <= 3 && n < len(digits); n++ {
		cc, err := strconv.Atoi(digits[:n])
		if err == nil && phonenumbers.GetRegionCodeForCountryCode(cc) != "ZZ" {
			ccLen = n
			break
		}
	}
	if ccLen == 0 {
		return "•••"
	}
	cc, nsn := "+"+digits[:ccLen], digits[ccLen:]
	if len(nsn) < 7 {
		return cc + " ••• " + nsn[max(0, len(nsn)-2):]
	}
	return cc + " " + nsn[:3] + " ••• " + nsn[len(nsn)-3:]
}

// waLink is the wa.me address of the business's WhatsApp number (digits
// only), or "" when none is configured or it is not a number.
func waLink(number string) string {
	var b strings.Builder
	for _, r := range number {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	if b.Len() < 6 {
		return ""
	}
	return "https://wa.me/" + b.String()
}

package crm

import (
	"strconv"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

func BenchmarkPhoneParts(b *testing.B) {
	nums := [][2]string{{"0151 12345678", "DE"}, {"+43 664 1234567", "AT"}, {"06 12345678", "FR"}, {"07911 012345", "GB"}, {"(201) 555-1234", "US"}}
	// parsed is nums parsed, for the benchmarks of the steps after Parse.
	parsed := func() []*phonenumbers.PhoneNumber {
		var ps []*phonenumbers.PhoneNumber
		for _, n := range nums {
			p, _ := phonenumbers.Parse(n[0], n[1])
			ps = append(ps, p)
		}
		return ps
	}
	b.Run("normalizePhone", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			n := nums[i%5]
			normalizePhone(n[0], n[1], n[1])
		}
	})
	b.Run("library", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			n := nums[i%5]
			num, err := phonenumbers.Parse(n[0], n[1])
			if err == nil && phonenumbers.IsValidNumber(num) {
				phonenumbers.Format(num, phonenumbers.E164)
			}
		}
	})
	b.Run("Parse", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			n := nums[i%5]
			phonenumbers.Parse(n[0], n[1])
		}
	})
	b.Run("IsValid", func(b *testing.B) {
		ps := parsed()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			phonenumbers.IsValidNumber(ps[i%5])
		}
	})
	b.Run("IsValidForRegion", func(b *testing.B) {
		ps := parsed()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			phonenumbers.IsValidNumberForRegion(ps[i%5], nums[i%5][1])
		}
	})
	b.Run("Format", func(b *testing.B) {
		ps := parsed()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			phonenumbers.Format(ps[i%5], phonenumbers.E164)
		}
	})
}

// validNumberRegion must answer as IsValidNumber and GetRegionCodeForNumber
// do, for numbers of every region written with any region as the default.
func TestValidNumberRegionMatchesLibrary(t *testing.T) {
	types := []phonenumbers.PhoneNumberType{phonenumbers.FIXED_LINE, phonenumbers.MOBILE, phonenumbers.TOLL_FREE,
		phonenumbers.PREMIUM_RATE, phonenumbers.SHARED_COST, phonenumbers.VOIP, phonenumbers.PERSONAL_NUMBER,
		phonenumbers.PAGER, phonenumbers.UAN, phonenumbers.VOICEMAIL}
	checked := 0
	for region := range phonenumbers.GetSupportedRegions() {
		cc := phonenumbers.GetCountryCodeForRegion(region)
		main := phonenumbers.GetRegionCodeForCountryCode(cc)
		for _, typ := range types {
			ex := phonenumbers.GetExampleNumberForType(region, typ)
			if ex == nil {
				continue
			}
			// The example, and neighbours of it that may fall outside
			// the patterns.
			for _, delta := range []int64{0, -99999, 10_000_000} {
				n := int64(ex.GetNationalNumber()) + delta
				if n <= 0 {
					continue
				}
				raw := "+" + strconv.Itoa(cc) + strconv.FormatInt(n, 10)
				for _, def := range []string{region, main} {
					num, err := phonenumbers.Parse(raw, def)
					if err != nil {
						continue
					}
					wantOK := phonenumbers.IsValidNumber(num)
					wantRegion := phonenumbers.GetRegionCodeForNumber(num)
					gotRegion, gotOK := validNumberRegion(num, def)
					if gotOK != wantOK || (wantOK && gotRegion != wantRegion) {
						t.Fatalf("%s (default %s): got %s %v, want %s %v", raw, def, gotRegion, gotOK, wantRegion, wantOK)
					}
					checked++
				}
			}
		}
	}
	if checked < 2000 {
		t.Fatalf("only %d numbers checked", checked)
	}
}

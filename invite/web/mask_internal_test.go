package web

import "testing"

func TestMaskPhone(t *testing.T) {
	for in, want := range map[string]string{
		"+4915123456678": "+49 151 ••• 678",
		"+14155550123":   "+1 415 ••• 123",
		"+447700900123":  "+44 770 ••• 123",
		"+35312345":      "+353 ••• 45",
		"":               "",
	} {
		if got := maskPhone(in); got != want {
			t.Errorf("maskPhone(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEveryLanguageHasEveryText(t *testing.T) {
	for lang, m := range messages {
		for key := range messages["en"] {
			if m[key] == "" {
				t.Errorf("%s lacks %q", lang, key)
			}
		}
	}
}

func TestParsePhone(t *testing.T) {
	cases := []struct{ raw, region, want string }{
		{"0151 2345 6789", "DE", "+4915123456789"},
		{"+49 (0)151-2345-6789", "", "+4915123456789"},
		{"030 1234567", "DE", ""},
		{"hello", "DE", ""},
		{"0151 2345 6789", "", ""},
	}
	for _, c := range cases {
		got, _ := parsePhone(c.raw, c.region)
		if got != c.want {
			t.Errorf("parsePhone(%q, %q) = %q, want %q", c.raw, c.region, got, c.want)
		}
	}
}

package invite

import "strings"

// CutAt cuts s at every occurrence of any of the markers, leftmost first:
// pieces[i] comes before found[i], and pieces has one more element than
// found. Pre-rendered messages and pages are cut this way once, then
// filled in per recipient or request.
func CutAt(s string, markers ...string) (pieces, found []string) {
	for {
		at, which := -1, ""
		for _, m := range markers {
			if i := strings.Index(s, m); i >= 0 && (at < 0 || i < at) {
				at, which = i, m
			}
		}
		if at < 0 {
			return append(pieces, s), found
		}
		pieces = append(pieces, s[:at])
		found = append(found, which)
		s = s[at+len(which):]
	}
}

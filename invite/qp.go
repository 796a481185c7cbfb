package invite

// The quoted-printable encoder of the message bodies. The standard
// library's mime/quotedprintable writes through an io.Writer byte by byte;
// this one appends to a slice and can resume at a given column, which is
// what lets a body be encoded once per campaign in pieces and the few
// per-recipient values be encoded on their own and spliced in between
// (see compile.go). Its output decodes exactly like the standard writer's
// (text mode): line ends become CRLF, lines stay under 76 characters.

const (
	// qpMaxLine is the longest encoded line before its soft break ("=").
	qpMaxLine = 75
	upperHex  = "0123456789ABCDEF"
)

// qpSoftBreak ends an encoded line without ending the text line.
const qpSoftBreak = "=\r\n"

// qpAppend appends src quoted-printable encoded to dst, starting at column
// col of the current line, and returns the extended slice and the column
// after it. "\n" and "\r\n" become hard line breaks (CRLF); a space or tab
// before a line break is encoded, because decoders strip trailing
// whitespace, and so is one at the end of src when final (nothing follows
// on its line).
func qpAppend[S ~string | ~[]byte](dst []byte, src S, col int, final bool) ([]byte, int) {
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '\n':
			dst = append(dst, '\r', '\n')
			col = 0
			continue
		case c == '\r' && i+1 < len(src) && src[i+1] == '\n':
			continue // the '\n' writes the CRLF
		case c == ' ' || c == '\t':
			last := i+1 == len(src)
			if (last && !final) || !last && src[i+1] != '\n' && !(src[i+1] == '\r' && i+2 < len(src) && src[i+2] == '\n') {
				if col+1 > qpMaxLine {
					dst = append(dst, qpSoftBreak...)
					col = 0
				}
				dst = append(dst, c)
				col++
				continue
			}
		case c >= '!' && c <= '~' && c != '=':
			if col+1 > qpMaxLine {
				dst = append(dst, qpSoftBreak...)
				col = 0
			}
			dst = append(dst, c)
			col++
			continue
		}
		if col+3 > qpMaxLine {
			dst = append(dst, qpSoftBreak...)
			col = 0
		}
		dst = append(dst, '=', upperHex[c>>4], upperHex[c&0x0f])
		col += 3
	}
	return dst, col
}

// htmlEscapeAppend appends s escaped as html/template escapes a string in
// HTML text and quoted attribute values (its htmlEscaper: the same seven
// characters, byte for byte), so that a spliced value reads exactly as the
// template would have written it.
func htmlEscapeAppend(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0:
			dst = append(dst, "\uFFFD"...)
		case '"':
			dst = append(dst, "&#34;"...)
		case '&':
			dst = append(dst, "&amp;"...)
		case '\'':
			dst = append(dst, "&#39;"...)
		case '+':
			dst = append(dst, "&#43;"...)
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

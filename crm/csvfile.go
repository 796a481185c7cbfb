package crm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// Encodings --encoding accepts.
var Encodings = []string{"utf-8", "windows-1252", "latin1", "utf-16"}

// ErrNotUTF8 is returned for a file that is not UTF-8 when no --encoding
// was given.
var ErrNotUTF8 = errors.New("the file is not UTF-8 text")

// EncodingError says where the first non-UTF-8 byte is and how to fix it.
type EncodingError struct {
	Offset int
	Byte   byte
}

func (e *EncodingError) Error() string {
	return fmt.Sprintf("the file is not UTF-8 text (byte 0x%02X at offset %d); Excel often saves Windows-1252: run the import again with --encoding windows-1252 (or latin1)", e.Byte, e.Offset)
}

func (e *EncodingError) Unwrap() error { return ErrNotUTF8 }

// sniffBytes is how much of a file is inspected for its encoding and
// delimiter.
const sniffBytes = 64 << 10

// decodeText wraps r so that it yields UTF-8: it strips a UTF-8 byte-order
// mark, decodes UTF-16 when it starts with its byte-order mark, transcodes
// the named encoding, and otherwise checks the start of the file is UTF-8.
func decodeText(r io.Reader, enc string) (*bufio.Reader, error) {
	br := bufio.NewReaderSize(r, sniffBytes)
	head, _ := br.Peek(4)
	var dec encoding.Encoding
	switch strings.ToLower(strings.ReplaceAll(enc, "_", "-")) {
	case "", "utf-8", "utf8":
		switch {
		case bytes.HasPrefix(head, []byte{0xEF, 0xBB, 0xBF}):
			br.Discard(3)
		case bytes.HasPrefix(head, []byte{0xFF, 0xFE}), bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
			dec = unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM)
		default:
			if enc == "" {
				if err := checkUTF8(br); err != nil {
					return nil, err
				}
			}
		}
	case "windows-1252", "cp1252":
		dec = charmap.Windows1252
	case "latin1", "iso-8859-1":
		dec = charmap.ISO8859_1
	case "utf-16", "utf16":
		dec = unicode.UTF16(unicode.LittleEndian, unicode.UseBOM)
	default:
		return nil, fmt.Errorf("unknown encoding %q (use one of %s)", enc, strings.Join(Encodings, ", "))
	}
	if dec == nil {
		return br, nil
	}
	return bufio.NewReaderSize(transform.NewReader(br, dec.NewDecoder()), sniffBytes), nil
}

func checkUTF8(br *bufio.Reader) error {
	buf, _ := br.Peek(sniffBytes)
	for i := 0; i < len(buf); {
		r, size := utf8.DecodeRune(buf[i:])
		if r == utf8.RuneError && size <= 1 {
			if len(buf)-i < utf8.UTFMax && !utf8.FullRune(buf[i:]) {
				return nil // a rune cut by the peek window
			}
			return &EncodingError{Offset: i, Byte: buf[i]}
		}
		i += size
	}
	return nil
}

// sniffDelimiter picks `,`, `;` or tab: the one found most often outside
// quotes on the first line.
func sniffDelimiter(br *bufio.Reader) rune {
	buf, _ := br.Peek(sniffBytes)
	counts := map[rune]int{}
	inQuotes := false
	for _, r := range string(buf) {
		if r == '"' {
			inQuotes = !inQuotes
			continue
		}
		if inQuotes {
			continue
		}
		if r == '\n' || r == '\r' {
			break
		}
		if r == ',' || r == ';' || r == '\t' {
			counts[r]++
		}
	}
	best := ','
	for _, r := range []rune{';', '\t'} {
		if counts[r] > counts[best] {
			best = r
		}
	}
	return best
}

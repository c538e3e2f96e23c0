package crypto

// Valid reports whether MatchKey accepts raw as an identifier of kind k,
// without hashing it where it need not: a plain ASCII email is checked in
// one pass over a stack buffer, anything else normalized. A member's
// client that maps rows of its own list back to the rows of its upload
// (which skipped the identifiers MatchKey refuses) needs only this.
func (p Profile) Valid(k Kind, raw string) bool {
	if k == KindEmail && p.name != "" {
		var buf [254]byte
		if _, ok := p.asciiEmail(raw, &buf); ok {
			return true
		}
	}
	_, _, err := p.normalize(k, raw)
	return err == nil
}

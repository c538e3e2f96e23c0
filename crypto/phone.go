package crypto

import (
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// phone normalizes a phone number to E.164 ("+" then country code and
// number, digits only). Numbering plans differ by country (trunk prefixes,
// lengths, which digits may start a number), so the parsing and validation are
// libphonenumber's, through its maintained Go port, rather than ours: a
// home-made rule would make different match keys for the same person.
func (p Profile) phone(s string) (string, error) {
	region := "ZZ"                  // unknown region: only "+CC..." numbers parse
	if !strings.HasPrefix(s, "+") { // an explicit country code wins over the default
		if p.defaultCode == 0 {
			return "", invalid(KindPhone, "no country code and no default country code set")
		}
		region = phoneRegion(p.defaultCode)
	}
	for _, r := range s {
		// libphonenumber extracts a number from free text ("call me at
		// ..."); an identifier column should hold only the number.
		if !strings.ContainsRune("0123456789+-(). /", r) {
			return "", invalid(KindPhone, "contains characters other than digits, spaces and + - ( ) . /")
		}
	}
	num, err := phonenumbers.Parse(s, region)
	if err != nil {
		return "", invalid(KindPhone, "not a phone number")
	}
	if !phonenumbers.IsValidNumber(num) {
		return "", invalid(KindPhone, "not a valid number in its country's numbering plan")
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// phoneRegion returns a region code (ISO 3166 alpha-2) for a country calling
// code, or "" if there is none.
func phoneRegion(code int) string {
	r := phonenumbers.GetRegionCodeForCountryCode(code)
	if r == "ZZ" {
		return ""
	}
	return r
}

package api

// CanaryIdentifiers returns the collaboration's canary identifiers of a
// kind: fixed, public, made-up values that every member normalizes and
// tokenizes exactly as its customers' identifiers and sends with each
// upload. The room compares the members' canary tokens before it matches:
// if they differ, the members normalized differently (another profile or
// kind) or hold different collaboration secrets, and the room says so
// instead of reporting an overlap of zero.
//
// They are chosen so that the known profiles disagree on them (letter case,
// white space, Gmail dots and "+tags"), and are nobody's: reserved example
// domains, fictional telephone ranges, and made-up UUIDs.
func CanaryIdentifiers(kind string) []string {
	switch kind {
	case "email":
		return []string{
			"canary.one@example.com",
			" Canary.Two@Example.ORG ",
			"canary.three+alliance@gmail.com",
			"Canary.Four@googlemail.com",
		}
	case "phone":
		return []string{"+1 202 555 0143", "+44 20 7946 0958", "+61 491 570 006", "+1 (613) 555-0199"}
	case "maid":
		return []string{
			"6F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9",
			"0f9e8d7c-6b5a-4493-8271-605f4e3d2c1b",
			"A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D",
			"12345678-9abc-4def-8123-456789abcdef",
		}
	case "custom":
		return []string{"canary-1", " Canary-2 ", "canary-3", "CANARY-4"}
	}
	return nil
}

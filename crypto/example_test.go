package crypto_test

import (
	"fmt"
	"log"

	"github.com/opencleanroom/cleanroom/crypto"
)

// Two partners blind the same email with their own keys; after each has
// re-encrypted the other's value, the results are equal, and neither the
// room nor the other partner learned the email or a key.
func Example() {
	profile, err := crypto.LookupProfile(crypto.ProfilePAIRv1, crypto.ProfileOptions{})
	if err != nil {
		log.Fatal(err)
	}
	ks, _ := crypto.NewSecret(nil) // shared by the members, sealed to each
	courses, _ := crypto.GenerateBlindingKey(nil)
	fitness, _ := crypto.GenerateBlindingKey(nil)

	a, _ := profile.MatchKey(crypto.KindEmail, " Alice.Smith@Example.com")
	b, _ := profile.MatchKey(crypto.KindEmail, "alice.smith@example.com ")

	ca, _ := courses.Encrypt(ks, a) // sent by the course platform
	cb, _ := fitness.Encrypt(ks, b) // sent by the fitness app
	ab, _ := fitness.Reencrypt(ca)  // the room relays ca to the fitness app
	ba, _ := courses.Reencrypt(cb)  // and cb to the course platform
	fmt.Println("match:", ab == ba)
	// Output: match: true
}

func ExampleProfile_MatchKey() {
	p, _ := crypto.LookupProfile(crypto.ProfileGmailv1, crypto.ProfileOptions{DefaultCountryCode: 44})
	email, _ := p.Normalize(crypto.KindEmail, " B.O.B+news@GoogleMail.com")
	phone, _ := p.Normalize(crypto.KindPhone, "020 7946 0018")
	key, _ := p.MatchKey(crypto.KindEmail, "alice.smith@example.com")
	fmt.Println(email)
	fmt.Println(phone)
	fmt.Println(key)
	// Output:
	// bob@gmail.com
	// +442079460018
	// 7dcd3a39ad3a8d2145645ec612ed4f6fa3f297b47bdcf7e0aeb76040f5e24e89
}

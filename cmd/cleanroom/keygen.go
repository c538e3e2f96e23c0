package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/opencleanroom/cleanroom/crypto"
)

func runKeygen(e *env, args []string) error {
	fs := newFlags(e, "keygen", "--name NAME --out FILE [--force]", `
Makes a partner key file: an Ed25519 signing key, an X25519 HPKE key pair and
a ristretto255 blinding scalar (format `+crypto.PartnerKeyFormat+`). The
file is written with mode 0600. The partner's public keys, a JWK set to give
to the room's operator, are printed on stdout; their fingerprint, which the
other members of a collaboration pin (--pin NAME=FINGERPRINT), on stderr.`)
	name := fs.String("name", "", "partner name: 1-63 of a-z 0-9 . _ - (required)")
	out := fs.String("out", "", "file to write the private key to (required)")
	force := fs.Bool("force", false, "replace an existing file")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *name == "" || *out == "" {
		return usagef("--name and --out are required")
	}
	if !crypto.ValidPartnerName(*name) {
		return usagef("--name must be 1-63 of a-z 0-9 . _ - and start with a letter or digit")
	}
	k, err := crypto.GeneratePartnerKey(*name, nil)
	if err != nil {
		return err
	}
	data, err := crypto.MarshalPartnerKey(k)
	if err != nil {
		return err
	}
	if err := writeSecret(*out, append(data, '\n'), *force); err != nil {
		return err
	}
	pub, err := json.MarshalIndent(k.Public(), "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s\n", pub)
	fmt.Fprintf(e.stderr, "cleanroom keygen: wrote the private key of %s to %s (mode 0600); its public keys are on stdout\n", *name, *out)
	fmt.Fprintf(e.stderr, "cleanroom keygen: their fingerprint, to give the other members out of band: %s\n", k.Public().Fingerprint())
	return nil
}

func runFingerprint(e *env, args []string) error {
	fs := newFlags(e, "fingerprint", "--key FILE | --keys PUBLIC_JWKS", `
Prints the fingerprint of a partner's public keys: what members compare out
of band and pass to collab create and collab accept as --pin NAME=FINGERPRINT.
It covers both keys a room serves for a member, the signing key and the
X25519 key the collaboration secret is sealed to. Give your own key file, or
the public JWK set another partner sent you.`)
	key := fs.String("key", "", "a partner key file, from cleanroom keygen")
	keys := fs.String("keys", "", "a partner's public JWK set, as cleanroom keygen printed it")
	if err := fs.parse(args); err != nil {
		return err
	}
	var pub *crypto.PublicKeys
	switch {
	case (*key == "") == (*keys == ""):
		return usagef("give one of --key and --keys")
	case *key != "":
		k, err := readPartnerKey(*key)
		if err != nil {
			return err
		}
		pub = k.Public()
	default:
		b, err := os.ReadFile(*keys)
		if err != nil {
			return err
		}
		if pub, err = crypto.ParsePublicKeys(b); err != nil {
			return withHint(err, "--keys takes the public JWK set cleanroom keygen printed; a key file goes to --key")
		}
	}
	fmt.Fprintln(e.stdout, pub.Fingerprint())
	return nil
}

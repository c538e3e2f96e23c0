package main

import (
	"encoding/json"
	"fmt"

	"github.com/opencleanroom/cleanroom/crypto"
)

func runKeygen(e *env, args []string) error {
	fs := newFlags(e, "keygen", "--name NAME --out FILE [--force]", `
Makes a partner key file: an Ed25519 signing key, an X25519 HPKE key pair and
a ristretto255 blinding scalar (format `+crypto.PartnerKeyFormat+`). The
file is written with mode 0600. The partner's public keys, a JWK set to give
to the room's operator, are printed on stdout.`)
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
	return nil
}

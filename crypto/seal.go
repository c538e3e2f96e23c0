package crypto

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/cloudflare/circl/hpke"
)

// SealInfo is the HPKE info string that binds a sealed collaboration secret
// to its purpose and this format's version.
const SealInfo = "cleanroom.dev/v1/collaboration-secret"

// hpkeSuite is RFC 9180's DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
// ChaCha20-Poly1305. The KEM matches the X25519 key in a partner key file.
var hpkeSuite = struct {
	kem  hpke.KEM
	kdf  hpke.KDF
	aead hpke.AEAD
}{hpke.KEM_X25519_HKDF_SHA256, hpke.KDF_HKDF_SHA256, hpke.AEAD_ChaCha20Poly1305}

// ErrSealedSecret means a sealed secret could not be opened: it was sealed
// to another key, by another sender, for another collaboration, or it was
// altered. The caller should ask the sender to seal it again.
var ErrSealedSecret = errors.New("sealed collaboration secret cannot be opened")

// SealSecret encrypts ks to the partner to, in HPKE's authenticated mode
// under from's key: the recipient learns that a holder of from's key made it,
// so the room, which relays sealed secrets, cannot substitute a secret of its
// own (it would then know the key of the recipient's tokens). aad binds the
// seal to its context (the collaboration id and both partners' names) and
// must be given again to open it. The result is enc || ciphertext.
func SealSecret(r io.Reader, ks *Secret, from *PartnerKey, to *PublicKeys, aad []byte) ([]byte, error) {
	if r == nil {
		r = rand.Reader
	}
	suite := hpke.NewSuite(hpkeSuite.kem, hpkeSuite.kdf, hpkeSuite.aead)
	sender, err := suite.NewSender(to.kemPub, []byte(SealInfo))
	if err != nil {
		return nil, fmt.Errorf("crypto: HPKE sender: %w", err)
	}
	enc, sealer, err := sender.SetupAuth(r, from.kemPriv)
	if err != nil {
		return nil, fmt.Errorf("crypto: HPKE setup: %w", err)
	}
	ct, err := sealer.Seal(ks.b[:], aad)
	if err != nil {
		return nil, fmt.Errorf("crypto: HPKE seal: %w", err)
	}
	return append(enc, ct...), nil
}

// OpenSecret decrypts a secret sealed by SealSecret from the partner with
// public keys from to the partner key to, with the same aad.
func OpenSecret(sealed []byte, to *PartnerKey, from *PublicKeys, aad []byte) (*Secret, error) {
	n := hpkeSuite.kem.Scheme().CiphertextSize()
	if len(sealed) <= n {
		return nil, ErrSealedSecret
	}
	suite := hpke.NewSuite(hpkeSuite.kem, hpkeSuite.kdf, hpkeSuite.aead)
	receiver, err := suite.NewReceiver(to.kemPriv, []byte(SealInfo))
	if err != nil {
		return nil, fmt.Errorf("crypto: HPKE receiver: %w", err)
	}
	opener, err := receiver.SetupAuth(sealed[:n], from.kemPub)
	if err != nil {
		return nil, ErrSealedSecret
	}
	pt, err := opener.Open(sealed[n:], aad)
	if err != nil {
		return nil, ErrSealedSecret
	}
	s, err := SecretFromBytes(pt)
	clear(pt)
	if err != nil {
		return nil, ErrSealedSecret
	}
	return s, nil
}

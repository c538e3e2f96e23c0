package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
)

// ErrNoSecret means this partner holds no secret for the collaboration yet:
// its creator has not delivered it, or this partner has not accepted.
var ErrNoSecret = errors.New("client: no collaboration secret here yet")

// ErrKeyPin means a member's key, as the room presented it, is not the one
// pinned by the caller: the room (or the registration) is not to be trusted
// with this collaboration.
var ErrKeyPin = errors.New("client: a member's key does not match its pinned fingerprint")

// StateDir is a partner's local state: collaboration secrets (mode 0600)
// and the progress of uploads, so that an interrupted upload resumes.
type StateDir string

// prepare makes the state directory, or closes one that exists to others:
// its files are 0600, but their names are the collaborations' ids.
func (d StateDir) prepare() error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return err
	}
	fi, err := os.Stat(string(d))
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return os.Chmod(string(d), 0o700)
	}
	return nil
}

func (d StateDir) secretFile(collab string) string {
	return filepath.Join(string(d), collab+".secret")
}

// LoadSecret returns the collaboration secret saved for collab.
func (d StateDir) LoadSecret(collab string) (*crypto.Secret, error) {
	if !crypto.ValidPartnerName(collab) {
		return nil, fmt.Errorf("client: %q is not a collaboration id", collab)
	}
	b, err := crypto.ReadSecretFile(d.secretFile(collab))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoSecret
	}
	if err != nil {
		return nil, err
	}
	return crypto.ParseSecret(string(b))
}

func (d StateDir) saveSecret(collab string, s *crypto.Secret) error {
	if err := d.prepare(); err != nil {
		return err
	}
	return crypto.WriteSecretFile(d.secretFile(collab), []byte(s.Hex()+"\n"), true)
}

// sealAAD binds a sealed secret to its collaboration and both partners.
func sealAAD(collab, from, to string) []byte {
	return []byte("cleanroom.dev/v1/seal\x00" + collab + "\x00" + from + "\x00" + to)
}

// Fingerprint is what members compare out of band to pin each other's
// keys: the RFC 7638 thumbprint of the signing key (its kid).
func Fingerprint(p *crypto.PublicKeys) string { return p.SigningKey().KeyID() }

// memberKeys returns member m's keys as the room presented them in v. With
// pins, m must be pinned, and to the key the room presented: pinning some
// members and not others would let a lying room add a member of its own
// (or speak for one not pinned) and be sealed, or send, the secret.
func memberKeys(v *api.Collaboration, m string, pins map[string]string) (*crypto.PublicKeys, error) {
	raw, err := json.Marshal(v.Keys[m])
	if err != nil {
		return nil, err
	}
	pub, err := crypto.ParsePublicKeys(raw)
	if err != nil {
		return nil, fmt.Errorf("client: the room sent a malformed key for %s: %w", m, err)
	}
	if len(pins) == 0 {
		return pub, nil
	}
	pin, ok := pins[m]
	if !ok {
		return nil, fmt.Errorf("%w: member %s has no pin (pin every other member, or none)", ErrKeyPin, m)
	}
	if pin != Fingerprint(pub) {
		return nil, fmt.Errorf("%w (member %s)", ErrKeyPin, m)
	}
	return pub, nil
}

// checkOwnKey reports whether v presents this partner's own key as its
// member key: a room that swapped it could have a secret sealed to the
// key it holds pass for one sealed by or to this partner.
func (c *Client) checkOwnKey(v *api.Collaboration) error {
	raw, err := json.Marshal(v.Keys[c.principal])
	if err != nil {
		return err
	}
	pub, err := crypto.ParsePublicKeys(raw)
	if err != nil || Fingerprint(pub) != Fingerprint(c.key.Public()) {
		return fmt.Errorf("%w (the room presents another key as this partner's own)", ErrKeyPin)
	}
	return nil
}

// DistributeSecret makes the collaboration secret (or reuses the one saved
// here) and delivers it, sealed with HPKE to each other member's key, through
// the room, which cannot open it. pins maps members to the key fingerprints
// the caller confirmed out of band (optional; if any is given, every other
// member must be).
func (c *Client) DistributeSecret(ctx context.Context, collab string, state StateDir, pins map[string]string) error {
	v, err := c.Collaboration(ctx, collab)
	if err != nil {
		return err
	}
	ks, err := state.LoadSecret(collab)
	if errors.Is(err, ErrNoSecret) {
		if ks, err = crypto.NewSecret(nil); err == nil {
			err = state.saveSecret(collab, ks)
		}
	}
	if err != nil {
		return err
	}
	if err := c.checkOwnKey(v); err != nil {
		return err
	}
	me := c.principal
	for _, m := range v.Members {
		if m == me {
			continue
		}
		pub, err := memberKeys(v, m, pins)
		if err != nil {
			return err
		}
		sealed, err := crypto.SealSecret(nil, ks, c.key, pub, sealAAD(collab, me, m))
		if err != nil {
			return err
		}
		if err := c.do(ctx, "PUT", "/v1/collaborations/"+esc(collab)+"/secrets/"+esc(m), api.SealedSecret{From: me, To: m, Sealed: sealed}, nil); err != nil {
			return fmt.Errorf("delivering the secret to %s: %w", m, err)
		}
	}
	return nil
}

// ReceiveSecret fetches the secret sealed to this partner by the
// collaboration's creator, opens it with the creator's key (checked against
// pins, if given) and saves it.
func (c *Client) ReceiveSecret(ctx context.Context, collab string, state StateDir, pins map[string]string) error {
	v, err := c.Collaboration(ctx, collab)
	if err != nil {
		return err
	}
	var s api.SealedSecret
	if err := c.do(ctx, "GET", "/v1/collaborations/"+esc(collab)+"/secret", nil, &s); err != nil {
		var p *api.Problem
		if errors.As(err, &p) && p.Type == api.ProblemNotFound {
			return ErrNoSecret
		}
		return err
	}
	// The creator makes the secret and seals it to the other members: a
	// secret from anyone else (this partner itself included, whose key a
	// lying room could present as its own) is refused unopened.
	if s.To != c.principal {
		return crypto.ErrSealedSecret
	}
	if s.From != v.CreatedBy || s.From == c.principal || !slices.Contains(v.Members, s.From) {
		return fmt.Errorf("%w: it is sealed by %q, not by the collaboration's creator", crypto.ErrSealedSecret, s.From)
	}
	if err := c.checkOwnKey(v); err != nil {
		return err
	}
	pub, err := memberKeys(v, s.From, pins)
	if err != nil {
		return err
	}
	ks, err := crypto.OpenSecret(s.Sealed, c.key, pub, sealAAD(collab, s.From, s.To))
	if err != nil {
		return err
	}
	return state.saveSecret(collab, ks)
}

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
	"strings"

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

// ErrSecretConflict means another secret for the collaboration is saved
// here, or one saved for other members: a secret is never replaced, nor
// given to a collaboration it was not made for.
var ErrSecretConflict = errors.New("client: another secret for this collaboration is saved here")

// ErrSecretReused means the secret delivered for a collaboration is one
// this state directory holds for another collaboration: the creator gave
// both one secret. In hashed mode the room would then see this partner's
// tokens in both under one key and could link the two lists; ask the
// creator for a collaboration with a fresh secret. (A blinded set is under
// a key of the collaboration's own either way: Client.BlindingKey.)
var ErrSecretReused = errors.New("client: this secret is saved here for another collaboration; a collaboration's secret must be fresh")

// StateDir is a partner's local state: for each room, in a directory named
// by the room's id (StateDir.Room), its collaborations' secrets (mode 0600)
// and the progress of its uploads, so that an interrupted upload resumes. A
// collaboration's id names it only within its room: state kept by the id
// alone would let a collaboration of the same id in another room replace
// the secret of this one, or be given it.
type StateDir string

// Room returns the state kept for the room whose id is id.
func (d StateDir) Room(id string) (StateDir, error) {
	if !crypto.ValidPartnerName(id) {
		return "", fmt.Errorf("client: the room's id %q cannot name a state directory", id)
	}
	return StateDir(filepath.Join(string(d), id)), nil
}

// KnowRoom checks the key info shows against the one this state recorded
// for the room's id, and records it the first time: a room showing the id
// of one met before must hold that room's key (which New has it prove).
// It returns ErrWrongRoom for another key.
func (d StateDir) KnowRoom(info api.RoomInfo) error {
	rd, err := d.Room(info.ID)
	if err != nil {
		return err
	}
	path := filepath.Join(string(rd), "room.key")
	b, err := os.ReadFile(path)
	switch {
	case err == nil && strings.TrimSpace(string(b)) == info.VerifierKey:
		return nil
	case err == nil:
		return fmt.Errorf("%w: %s recorded another key for room %s", ErrWrongRoom, path, info.ID)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err := rd.prepare(); err != nil {
		return err
	}
	return crypto.WriteSecretFile(path, []byte(info.VerifierKey+"\n"), false)
}

// prepare makes a room's state directory, or closes it and the state
// directory to others where they exist: the files are 0600, but their
// names are the rooms' and collaborations' ids.
func (d StateDir) prepare() error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return err
	}
	for _, dir := range []string{filepath.Dir(string(d)), string(d)} {
		fi, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(dir, 0o700); err != nil {
				return err
			}
		}
	}
	return nil
}

// secretFormat names the format of a saved secret's file:
//
//	{"format": "cleanroom.dev/collab-secret/v1", "room": "room-…",
//	 "collab": "c1", "creator": "alpha", "members": ["alpha", "bravo"],
//	 "secret": "<64 hex digits>"}
//
// The file says which collaboration the secret was made for, by whom, and
// for which members (sorted), so that it is delivered to those alone.
const secretFormat = "cleanroom.dev/collab-secret/v1"

type savedSecret struct {
	Format  string   `json:"format"`
	Room    string   `json:"room"`
	Collab  string   `json:"collab"`
	Creator string   `json:"creator"`
	Members []string `json:"members"`
	Secret  string   `json:"secret"`

	secret *crypto.Secret
}

func (d StateDir) secretFile(collab string) string {
	return filepath.Join(string(d), collab+".secret")
}

// LoadSecret returns the collaboration secret saved for collab in room.
func (d StateDir) LoadSecret(room, collab string) (*crypto.Secret, error) {
	rd, err := d.Room(room)
	if err != nil {
		return nil, err
	}
	s, err := rd.saved(collab)
	if err != nil {
		return nil, err
	}
	return s.secret, nil
}

// saved reads the secret saved for collab in a room's state.
func (d StateDir) saved(collab string) (*savedSecret, error) {
	if !crypto.ValidPartnerName(collab) {
		return nil, fmt.Errorf("client: %q is not a collaboration id", collab)
	}
	path := d.secretFile(collab)
	b, err := crypto.ReadSecretFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoSecret
	}
	if err != nil {
		return nil, err
	}
	var s savedSecret
	if err := json.Unmarshal(b, &s); err != nil || s.Format != secretFormat {
		return nil, fmt.Errorf("client: %s is not a saved secret (format %s)", path, secretFormat)
	}
	if s.Room != filepath.Base(string(d)) || s.Collab != collab {
		return nil, fmt.Errorf("%w: %s holds the secret of another collaboration", ErrSecretConflict, path)
	}
	if s.secret, err = crypto.ParseSecret(s.Secret); err != nil {
		return nil, fmt.Errorf("client: %s: %w", path, err)
	}
	return &s, nil
}

// savedElsewhere returns "room/collab" of a secret equal to ks that the
// state directory of d, a room's state, holds for another collaboration, in
// any room, or "" if it holds none. Files that are not saved secrets are
// not this check's to judge, and are passed over.
func (d StateDir) savedElsewhere(collab string, ks *crypto.Secret) (string, error) {
	root := filepath.Dir(string(d))
	rooms, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	for _, r := range rooms {
		if !r.IsDir() {
			continue
		}
		rd := StateDir(filepath.Join(root, r.Name()))
		files, err := os.ReadDir(string(rd))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		for _, f := range files {
			id, ok := strings.CutSuffix(f.Name(), ".secret")
			if !ok || rd == d && id == collab {
				continue
			}
			if s, err := rd.saved(id); err == nil && s.secret.Equal(ks) {
				return s.Room + "/" + s.Collab, nil
			}
		}
	}
	return "", nil
}

// save writes a secret for collab in a room's state; it never replaces
// one.
func (d StateDir) save(collab, creator string, members []string, ks *crypto.Secret) error {
	if err := d.prepare(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(savedSecret{Format: secretFormat, Room: filepath.Base(string(d)), Collab: collab,
		Creator: creator, Members: members, Secret: ks.Hex()}, "", "  ")
	if err != nil {
		return err
	}
	err = crypto.WriteSecretFile(d.secretFile(collab), append(b, '\n'), false)
	if errors.Is(err, fs.ErrExist) {
		return ErrSecretConflict
	}
	return err
}

// sortedMembers returns a collaboration's members in order.
func sortedMembers(v *api.Collaboration) []string {
	m := slices.Clone(v.Members)
	slices.Sort(m)
	return m
}

// sealAAD binds a sealed secret to its room, its collaboration and both
// partners.
func sealAAD(room, collab, from, to string) []byte {
	return []byte("cleanroom.dev/v1/seal\x00" + room + "\x00" + collab + "\x00" + from + "\x00" + to)
}

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
	if pin != pub.Fingerprint() {
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
	if err != nil || pub.Fingerprint() != c.key.Public().Fingerprint() {
		return fmt.Errorf("%w (the room presents another key as this partner's own)", ErrKeyPin)
	}
	return nil
}

// CheckPins reports whether the keys v shows match pins (see
// DistributeSecret), this partner's own key included, so that a member
// can check them before it accepts a collaboration. With pins, every other
// member must be pinned and every pin must name a member: the pins then
// say who the members are, and a room that adds one (even a partner the
// caller knows) is refused. Without pins it checks this partner's own key
// only.
func (c *Client) CheckPins(v *api.Collaboration, pins map[string]string) error {
	if err := c.checkOwnKey(v); err != nil {
		return err
	}
	for _, m := range v.Members {
		if m == c.principal {
			continue
		}
		if _, err := memberKeys(v, m, pins); err != nil {
			return err
		}
	}
	for m := range pins {
		if m == c.principal || !slices.Contains(v.Members, m) {
			return fmt.Errorf("%w: %s is pinned but not another member of %s (pin the other members, each once)", ErrKeyPin, m, v.ID)
		}
	}
	return nil
}

// DistributeSecret makes the collaboration secret (or reuses the one saved
// here for the same collaboration and members) and delivers it, sealed with
// HPKE to each other member's key, through the room, which cannot open it.
// Only the collaboration's creator distributes. pins maps members to the key
// fingerprints the caller confirmed out of band (optional; if any is given,
// they must name exactly the other members: see CheckPins).
func (c *Client) DistributeSecret(ctx context.Context, collab string, state StateDir, pins map[string]string) error {
	v, err := c.Collaboration(ctx, collab)
	if err != nil {
		return err
	}
	me := c.principal
	if v.CreatedBy != me {
		return fmt.Errorf("client: %s created %s; only its creator makes and delivers its secret", v.CreatedBy, collab)
	}
	// Every key first, so that a wrong one delivers the secret to nobody.
	if err := c.CheckPins(v, pins); err != nil {
		return err
	}
	if state, err = c.roomState(state, v); err != nil {
		return err
	}
	members := sortedMembers(v)
	saved, err := state.saved(collab)
	var ks *crypto.Secret
	switch {
	case errors.Is(err, ErrNoSecret):
		if ks, err = crypto.NewSecret(nil); err == nil {
			err = state.save(collab, me, members, ks)
		}
	case err == nil && saved.Creator == me && slices.Equal(saved.Members, members):
		ks = saved.secret
	case err == nil:
		err = fmt.Errorf("%w: it was made for other members of %s", ErrSecretConflict, collab)
	}
	if err != nil {
		return err
	}
	for _, m := range v.Members {
		if m == me {
			continue
		}
		pub, err := memberKeys(v, m, pins)
		if err != nil {
			return err
		}
		sealed, err := crypto.SealSecret(nil, ks, c.key, pub, sealAAD(c.room.ID, collab, me, m))
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
// pins, if given) and saves it. A secret already saved for the
// collaboration stays: receiving the same one again does nothing, and
// another is refused (ErrSecretConflict), as is one the state directory
// holds for another collaboration (ErrSecretReused).
func (c *Client) ReceiveSecret(ctx context.Context, collab string, state StateDir, pins map[string]string) error {
	v, err := c.Collaboration(ctx, collab)
	if err != nil {
		return err
	}
	if state, err = c.roomState(state, v); err != nil {
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
	ks, err := crypto.OpenSecret(s.Sealed, c.key, pub, sealAAD(c.room.ID, collab, s.From, s.To))
	if err != nil {
		ks, err = crypto.OpenSecret(s.Sealed, c.key, pub, earlierSealAAD(collab, s.From, s.To))
	}
	if err != nil {
		return err
	}
	switch saved, err := state.saved(collab); {
	case errors.Is(err, ErrNoSecret):
		switch other, err := state.savedElsewhere(collab, ks); {
		case err != nil:
			return err
		case other != "":
			return fmt.Errorf("%w (%s)", ErrSecretReused, other)
		}
		return state.save(collab, s.From, sortedMembers(v), ks)
	case err != nil:
		return err
	case saved.Creator != s.From || !saved.secret.Equal(ks):
		return ErrSecretConflict
	}
	return nil
}

package cleanroom

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/opencleanroom/cleanroom/crypto"
)

// roomInfoFormat versions room.json.
const roomInfoFormat = "cleanroom.dev/room/v1"

// OperatorID is the principal id init registers for the operator.
const OperatorID = "operator"

// ErrNoRoom means the data directory holds no room. The caller should run
// cleanroom init --data DIR first.
var ErrNoRoom = errors.New("cleanroom: no room in this data directory")

// ErrRoomExists means init found a room already there; it never replaces one.
var ErrRoomExists = errors.New("cleanroom: a room already exists in this data directory")

type roomInfo struct {
	Format string `json:"format"`
	ID     string `json:"id"`
	Origin string `json:"audit_origin"`
}

// identity is the room's id and checkpoint key, read from the data directory.
type identity struct {
	info roomInfo
	key  ed25519.PrivateKey
}

// writeIdentity makes a new room identity and operator key in dir, which
// must not hold a room. It returns the operator's key.
func writeIdentity(dir DataDir, r io.Reader) (*crypto.PartnerKey, error) {
	if r == nil {
		r = rand.Reader
	}
	if _, err := os.Stat(dir.InfoFile()); err == nil {
		return nil, ErrRoomExists
	}
	if err := os.MkdirAll(string(dir), 0o700); err != nil {
		return nil, fmt.Errorf("cleanroom: making data directory: %w", err)
	}
	var idb [8]byte
	if _, err := io.ReadFull(r, idb[:]); err != nil {
		return nil, err
	}
	id := "room-" + hex.EncodeToString(idb[:])
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(r, seed); err != nil {
		return nil, err
	}
	op, err := crypto.GeneratePartnerKey(OperatorID, r)
	if err != nil {
		return nil, err
	}
	opFile, err := crypto.MarshalPartnerKey(op)
	if err != nil {
		return nil, err
	}
	if err := crypto.WriteSecretFile(dir.KeyFile(), []byte(hex.EncodeToString(seed)+"\n"), false); err != nil {
		return nil, fmt.Errorf("cleanroom: writing room key: %w", err)
	}
	if err := crypto.WriteSecretFile(dir.OperatorKeyFile(), opFile, false); err != nil {
		return nil, fmt.Errorf("cleanroom: writing operator key: %w", err)
	}
	info := roomInfo{Format: roomInfoFormat, ID: id, Origin: "cleanroom/" + id}
	b, _ := json.MarshalIndent(info, "", "  ")
	// room.json last: its presence is what says a room exists.
	if err := os.WriteFile(dir.InfoFile(), append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("cleanroom: writing room.json: %w", err)
	}
	return op, nil
}

// readIdentity loads the room's identity from dir.
func readIdentity(dir DataDir) (*identity, error) {
	b, err := os.ReadFile(dir.InfoFile())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoRoom
	}
	if err != nil {
		return nil, err
	}
	var info roomInfo
	if err := json.Unmarshal(b, &info); err != nil || info.Format != roomInfoFormat || info.ID == "" {
		return nil, fmt.Errorf("cleanroom: %s is not a room file", dir.InfoFile())
	}
	kb, err := crypto.ReadSecretFile(dir.KeyFile())
	if err != nil {
		return nil, fmt.Errorf("cleanroom: reading room key: %w", err)
	}
	seed, err := hex.DecodeString(string(bytes.TrimSpace(kb)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("cleanroom: %s is not a room key", dir.KeyFile())
	}
	return &identity{info, ed25519.NewKeyFromSeed(seed)}, nil
}

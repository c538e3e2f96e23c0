package client

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
)

// State written by earlier versions of the client kept every room's
// collaborations in the state directory itself: a secret as 64 hex digits
// in <collab>.secret, an upload's progress in <collab>.upload.json and
// <collab>.uploaded.json. The first time this client acts on such a
// collaboration in a room, it takes those files into the room's directory,
// the secret recorded as the room shows the collaboration (its creator and
// members), and the old secret file goes, so that no other room takes it
// up too.

// roomState returns the state of v's room, after taking into it what an
// earlier client left for v's collaboration in state.
func (c *Client) roomState(state StateDir, v *api.Collaboration) (StateDir, error) {
	rd, err := state.Room(c.room.ID)
	if err != nil {
		return "", err
	}
	if !crypto.ValidPartnerName(v.ID) {
		return "", fmt.Errorf("client: %q is not a collaboration id", v.ID)
	}
	old := state.secretFile(v.ID)
	b, err := crypto.ReadSecretFile(old)
	if errors.Is(err, fs.ErrNotExist) {
		return rd, nil
	}
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(rd.secretFile(v.ID)); err == nil {
		return rd, nil // this room's own secret: the old file may be another room's
	}
	ks, err := crypto.ParseSecret(string(b))
	if err != nil {
		return "", fmt.Errorf("client: %s: %w", old, err)
	}
	if err := rd.save(v.ID, v.CreatedBy, sortedMembers(v), ks); err != nil {
		return "", err
	}
	for _, name := range []string{v.ID + ".upload.json", v.ID + ".uploaded.json"} {
		from, to := filepath.Join(string(state), name), filepath.Join(string(rd), name)
		if _, err := os.Stat(to); errors.Is(err, fs.ErrNotExist) {
			if err := os.Rename(from, to); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return "", err
			}
		}
	}
	return rd, os.Remove(old)
}

// earlierSealAAD is what an earlier client bound a sealed secret to: its
// collaboration and both partners, not the room.
func earlierSealAAD(collab, from, to string) []byte {
	return []byte("cleanroom.dev/v1/seal\x00" + collab + "\x00" + from + "\x00" + to)
}

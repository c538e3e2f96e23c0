package client

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/crypto"
)

// TestSavedSecret: a saved secret is read back only as the secret of its
// own room and collaboration, never replaced, and a file that is not one
// is refused with its path, never its contents.
func TestSavedSecret(t *testing.T) {
	root := StateDir(t.TempDir())
	state, err := root.Room("room-1")
	if err != nil {
		t.Fatal(err)
	}
	ks, _ := crypto.NewSecret(nil)
	if err := state.save("c1", "alpha", []string{"alpha", "bravo"}, ks); err != nil {
		t.Fatal(err)
	}
	got, err := root.LoadSecret("room-1", "c1")
	if err != nil || !got.Equal(ks) {
		t.Fatalf("LoadSecret = %v, %v; want the saved secret", got, err)
	}
	other, _ := crypto.NewSecret(nil)
	if err := state.save("c1", "alpha", []string{"alpha", "bravo"}, other); !errors.Is(err, ErrSecretConflict) {
		t.Fatalf("a second save = %v, want ErrSecretConflict", err)
	}
	if got, _ := root.LoadSecret("room-1", "c1"); !got.Equal(ks) {
		t.Fatal("a second save replaced the secret")
	}
	if _, err := root.LoadSecret("room-1", "c2"); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("no secret saved: %v, want ErrNoSecret", err)
	}
	for _, id := range []string{"", "..", "../room-1", "Room 1"} {
		if _, err := root.Room(id); err == nil {
			t.Errorf("Room(%q) named a state directory", id)
		}
	}

	b, _ := os.ReadFile(state.secretFile("c1"))
	for _, tc := range []struct {
		name, room, collab, data string
		conflict                 bool
	}{
		{"a copy in another room's state", "room-2", "c1", string(b), true},
		{"a copy under another collaboration", "room-1", "c3", string(b), true},
		{"the bare secret", "room-1", "c4", ks.Hex(), false},
		{"another format", "room-1", "c5", strings.Replace(string(b), secretFormat, "cleanroom.dev/collab-secret/v0", 1), false},
		{"a bad secret", "room-1", "c6", strings.NewReplacer(ks.Hex(), ks.Hex()[:62], `"c1"`, `"c6"`).Replace(string(b)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(string(root), tc.room)
			os.MkdirAll(dir, 0o700)
			path := filepath.Join(dir, tc.collab+".secret")
			if err := crypto.WriteSecretFile(path, []byte(tc.data), false); err != nil {
				t.Fatal(err)
			}
			_, err := root.LoadSecret(tc.room, tc.collab)
			if err == nil || errors.Is(err, ErrSecretConflict) != tc.conflict {
				t.Fatalf("LoadSecret = %v, want an error (a conflict: %v)", err, tc.conflict)
			}
			if !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), ks.Hex()[:16]) {
				t.Errorf("the error %q should name the file and not its secret", err)
			}
		})
	}
}

// TestSavedElsewhere: a secret is found when the state directory holds it
// for another collaboration, in this room or another, and not for the
// collaboration itself, nor for a different secret; files that are not
// saved secrets are passed over.
func TestSavedElsewhere(t *testing.T) {
	root := StateDir(t.TempDir())
	room1, _ := root.Room("room-1")
	room2, _ := root.Room("room-2")
	ks, _ := crypto.NewSecret(nil)
	other, _ := crypto.NewSecret(nil)
	if err := room1.save("c1", "alpha", []string{"alpha", "bravo"}, ks); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(string(room2), 0o700)
	os.WriteFile(filepath.Join(string(room2), "junk.secret"), []byte("not JSON"), 0o600)
	os.WriteFile(filepath.Join(string(root), "c7.secret"), []byte(ks.Hex()), 0o600)
	for _, tc := range []struct {
		name   string
		state  StateDir
		collab string
		ks     *crypto.Secret
		want   string
	}{
		{"another collaboration of the room", room1, "c2", ks, "room-1/c1"},
		{"a collaboration of another room", room2, "c1", ks, "room-1/c1"},
		{"the collaboration itself", room1, "c1", ks, ""},
		{"another secret", room2, "c2", other, ""},
		{"a state directory not made yet", StateDir(filepath.Join(t.TempDir(), "none", "room-1")), "c1", ks, ""},
	} {
		got, err := tc.state.savedElsewhere(tc.collab, tc.ks)
		if err != nil || got != tc.want {
			t.Errorf("%s: savedElsewhere = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

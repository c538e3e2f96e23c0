package crypto

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// ErrInsecurePermissions means a secret file may be read by users other than
// its owner. The caller should tell the user to run chmod 600 on it.
var ErrInsecurePermissions = errors.New("secret file is readable by group or others")

// ReadSecretFile reads a file that holds a secret (a key file, a salt file),
// refusing it when its mode lets group or others read or write it: a key
// that others could read must be treated as leaked, and saying so is kinder
// than using it.
func ReadSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: %w (mode %04o)", path, ErrInsecurePermissions, st.Mode().Perm())
	}
	const limit = 1 << 20
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if len(data) > limit {
		return nil, fmt.Errorf("%s: secret file larger than 1 MiB", path)
	}
	return data, nil
}

// WriteSecretFile writes data to path with mode 0600. It refuses to replace
// an existing file unless overwrite is set, and writes through a temporary
// file and a rename so that a crash never leaves half a key behind.
func WriteSecretFile(path string, data []byte, overwrite bool) error {
	if !overwrite {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s: %w", path, fs.ErrExist)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, this fails harmlessly
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

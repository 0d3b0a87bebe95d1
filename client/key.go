package client

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/rexec/rexec/interceptors"
)

// LoadKey finds the client's key: from path, else $REXEC_KEY_FILE, else the
// default path; the key with id, or the file's first key when id is empty.
// Its errors are one line that names the file and what to do: the file is
// missing (and where it was looked for), open to others (with the chmod to
// run), has a bad line (its number and what is wrong), or has no key id.
func LoadKey(path, id string) (*interceptors.Key, error) {
	if path == "" {
		path = os.Getenv("REXEC_KEY_FILE")
	}
	byDefault := path == ""
	if byDefault {
		var err error
		if path, err = interceptors.DefaultKeyPath(); err != nil {
			return nil, err
		}
	}
	keys, err := interceptors.LoadKeyFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && byDefault:
		return nil, fmt.Errorf("no key file at %s (the default): rexecd creates it on its first start on this machine; "+
			"elsewhere, copy a line of the server's key file into it (mode 0600), or give --key-file or $REXEC_KEY_FILE", path)
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("key file %s does not exist (check --key-file or $REXEC_KEY_FILE)", path)
	case err != nil:
		return nil, err
	}
	if id == "" {
		return keys[0], nil
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		if k.ID == id {
			return k, nil
		}
		ids[i] = k.ID
	}
	return nil, fmt.Errorf("key file %s has no key %q (--key-id); its keys: %s", path, id, strings.Join(ids, ", "))
}

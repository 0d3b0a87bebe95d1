package cli

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/user"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/cliflag"
)

// keygenOpts are the flags of rexec keygen.
type keygenOpts struct {
	id, scopes string
}

func (c *command) keygenCmd() *cobra.Command {
	var o keygenOpts
	cmd := &cobra.Command{
		Use:   "keygen [--id ID] [--scopes exec,session,echo,admin]",
		Short: "Print a new key line for a key file",
		Long: `Print a new key: one line, KEY_ID BASE64_SECRET [SCOPES], with 32 random bytes of secret.
Append it to the server's key file (then SIGHUP rexecd) and to the client's.

The id is USER.HOST-XXXXXX by default (who made it, where, and 6 random hex digits), so that
two keys made the same way never share an id; --id names it yourself (1 to 64 of a-z A-Z 0-9
. _ -). No --scopes means every scope but replay.`,
		Example: `  rexec keygen >> ~/.config/rexec/keys                     # then: kill -HUP $(pidof rexecd)
  rexec keygen --id ci --scopes exec                       # a key that may only Run
  rexec keygen --id load --scopes echo,replay              # for ghz (README: Benchmarks)`,
		Args: cliflag.NoArgs("name the key with --id"),
		RunE: func(cmd *cobra.Command, _ []string) error { return exitWith(c.keygen(o)) },
	}
	cmd.Flags().StringVar(&o.id, "id", "", "key id (default: USER.HOST-XXXXXX, unique)")
	cmd.Flags().StringVar(&o.scopes, "scopes", "", "comma-separated scopes (default: all): "+strings.Join(interceptors.AllScopes, ","))
	return cmd
}

func (c *command) keygen(o keygenOpts) int {
	var sc []string
	if o.scopes != "" {
		sc = strings.Split(o.scopes, ",")
	}
	id := o.id
	if id == "" {
		id = defaultKeyID()
	}
	k, err := interceptors.GenerateKey(id, sc...)
	if err != nil {
		return c.fail(err)
	}
	if _, err := interceptors.ParseKeys([]byte(k.Line())); err != nil {
		return c.fail(fmt.Errorf("keygen: %w", err))
	}
	fmt.Fprintln(c.env.Stdout, k.Line())
	return 0
}

// defaultKeyID is USER.HOST-XXXXXX: who made the key and where, so that an
// audit line names them, and 24 random bits so that ids made the same way
// never collide in practice.
func defaultKeyID() string {
	var b [3]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail on Linux
	who := "key"
	if u, err := user.Current(); err == nil && u.Username != "" {
		who = keyIDPart(u.Username)
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		h, _, _ = strings.Cut(h, ".")
		who += "." + keyIDPart(h)
	}
	return who + "-" + hex.EncodeToString(b[:])
}

// keyIDPart keeps the characters a key id allows, at most 24 of them.
func keyIDPart(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		}
		return '_'
	}, s)
	return s[:min(len(s), 24)]
}

package asuser

import (
	"fmt"
	"os/user"
	"strconv"
)

// Lookup is user name's identity and home directory, from the host's user
// database (its passwd entry and the groups it is a member of).
func Lookup(name string) (Cred, string, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return Cred{}, "", err
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return Cred{}, "", fmt.Errorf("user %q has a uid or gid that is not a number (%s:%s)", name, u.Uid, u.Gid)
	}
	c := Cred{UID: uint32(uid), GID: uint32(gid)}
	gids, err := u.GroupIds()
	if err != nil {
		return Cred{}, "", fmt.Errorf("groups of user %q: %w", name, err)
	}
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			c.Groups = append(c.Groups, uint32(n))
		}
	}
	return c, u.HomeDir, nil
}

package runner

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
)

// Account is a unix user as a command runs as it: its ids, and what a login
// takes from its passwd entry.
type Account struct {
	Name     string
	UID, GID uint32
	Groups   []uint32 // supplementary groups, from the group database
	Home     string
	Shell    string
	// Self: the account this process runs as; a command is then started
	// with no change of credentials.
	Self bool
}

// LookupAccount reads user name from the host's user database: its passwd
// entry and the groups it is a member of.
func LookupAccount(name string) (*Account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	return accountOf(u)
}

func accountOf(u *user.User) (*Account, error) {
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %q has a uid or gid that is not a number (%s:%s)", u.Username, u.Uid, u.Gid)
	}
	a := &Account{Name: u.Username, UID: uint32(uid), GID: uint32(gid), Home: u.HomeDir, Shell: loginShell(u.Username)}
	gids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("groups of user %q: %w", u.Username, err)
	}
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			a.Groups = append(a.Groups, uint32(n))
		}
	}
	return a, nil
}

// currentAccount is the account this process runs as. Its home is this
// process's $HOME when set (systemd sets it from the unit's user; a test or
// a container may point it elsewhere), else the passwd entry's. Where the
// user database does not know the user (a container's arbitrary uid), it is
// made of the ids, $HOME and /bin/sh.
func currentAccount() *Account {
	home, _ := os.UserHomeDir()
	if u, err := user.Current(); err == nil {
		if a, err := accountOf(u); err == nil {
			a.Self = true
			if home != "" {
				a.Home = home
			}
			return a
		}
	}
	return &Account{Name: strconv.Itoa(os.Getuid()), UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), Home: home, Shell: "/bin/sh", Self: true}
}

// loginShell is the shell field of name's passwd entry, which os/user does
// not give; "/bin/sh" when it cannot be read or is empty, as login(1) does.
func loginShell(name string) string {
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return "/bin/sh"
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Split(strings.TrimRight(line, "\n"), ":")
		if len(f) == 7 && f[0] == name {
			if f[6] == "" {
				return "/bin/sh"
			}
			return f[6]
		}
	}
	return "/bin/sh"
}

// The PATH a login gets, as Debian's sshd and login(1) set it.
const (
	userPath = "/usr/local/bin:/usr/bin:/bin:/usr/games"
	rootPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// loginEnv is the environment a command of account a starts with, built
// as sshd builds a session's: the login variables from the passwd entry, a
// default PATH, TERM with a terminal, then the variables the server passes
// on purpose (Options.EnvFromDaemon), then the request's own entries, which
// override all of them (the client sends LANG and LC_* there, as ssh's
// SendEnv does). Nothing else of the server's environment reaches it.
func loginEnv(a *Account, pass []string, term string, req []string) []string {
	path := userPath
	if a.UID == 0 {
		path = rootPath
	}
	env := make([]string, 0, 7+len(pass)+len(req))
	env = append(env,
		"HOME="+a.Home,
		"USER="+a.Name,
		"LOGNAME="+a.Name,
		"SHELL="+a.Shell,
		"PATH="+path,
		"MAIL=/var/mail/"+a.Name,
	)
	if term != "" {
		env = append(env, "TERM="+term)
	}
	env = append(env, pass...)
	return append(env, req...)
}

// passThrough is the entries of this process's environment named by names.
func passThrough(names []string) []string {
	var env []string
	for _, n := range names {
		if v, ok := os.LookupEnv(n); ok {
			env = append(env, n+"="+v)
		}
	}
	return env
}

// homeDir is where a command of a starts when its request names no
// directory: the account's home, or "/" when that is not a directory, as
// sshd does ("Could not chdir to home directory").
func homeDir(a *Account) string {
	if a.Home != "" {
		if fi, err := os.Stat(a.Home); err == nil && fi.IsDir() {
			return a.Home
		}
	}
	return "/"
}

package runner

import "testing"

// TestSessionMember: /proc/PID/stat lines are parsed after the last ')', as
// a command name may hold spaces and parentheses; zombies are not members.
func TestSessionMember(t *testing.T) {
	for _, c := range []struct {
		stat string
		sid  int
		pgrp int
		ok   bool
	}{
		{"4242 (sleep) S 4200 4242 4200 34816 4200 4194304", 4200, 4242, true},
		{"4242 (a (b) c) d) R 4200 4243 4200 34816", 4200, 4243, true},
		{"4242 (sleep) S 4200 4242 4201 34816", 4200, 0, false},
		{"4242 (sleep) Z 4200 4242 4200 34816", 4200, 0, false},
		{"4242 (sleep) S 4200", 4200, 0, false},
		{"garbage", 4200, 0, false},
	} {
		pgrp, ok := sessionMember([]byte(c.stat), c.sid)
		if pgrp != c.pgrp || ok != c.ok {
			t.Errorf("sessionMember(%q, %d) = %d, %v; want %d, %v", c.stat, c.sid, pgrp, ok, c.pgrp, c.ok)
		}
	}
}

package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// SSHD is a throwaway OpenSSH server on a loopback port: the outside anchor.
type SSHD struct {
	Port    int
	dir     string
	cmd     *exec.Cmd
	control string
	master  *exec.Cmd
}

// EnsureOpenSSH installs openssh-server with apt-get when sshd is missing
// and this process may (root). It returns why not, when not.
func EnsureOpenSSH(ctx context.Context) error {
	if _, err := os.Stat("/usr/sbin/sshd"); err == nil {
		if _, err := exec.LookPath("ssh"); err == nil {
			return nil
		}
	}
	if os.Geteuid() != 0 {
		return errors.New("sshd is not installed and installing it needs root")
	}
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "openssh-server", "openssh-client"}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %w: %s", args[0], err, lastLine(out))
		}
	}
	return nil
}

func lastLine(b []byte) string {
	s := string(b)
	if len(s) > 200 {
		s = s[len(s)-200:]
	}
	return s
}

// StartSSHD runs sshd -D on a free loopback port with a throwaway host key
// and one authorized key, as the current user.
func StartSSHD(ctx context.Context) (*SSHD, error) {
	dir, err := os.MkdirTemp("", "rexec-bench-ssh-")
	if err != nil {
		return nil, err
	}
	s := &SSHD{dir: dir, control: filepath.Join(dir, "ctl")}
	for _, k := range []string{"host", "user"} {
		if out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, k)).CombinedOutput(); err != nil {
			s.Stop()
			return nil, fmt.Errorf("ssh-keygen: %w: %s", err, out)
		}
	}
	pub, _ := os.ReadFile(filepath.Join(dir, "user.pub"))
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		s.Stop()
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Stop()
		return nil, err
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s/host
AuthorizedKeysFile %s/authorized_keys
PidFile none
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PrintMotd no
AcceptEnv none
LogLevel ERROR
Subsystem sftp internal-sftp
# A fleet of 100 hosts has 100 sshd, each with its own MaxStartups; this
# one sshd stands for all of them (the fleet group's pdsh and clush).
MaxStartups 256
`, s.Port, dir, dir)
	if err := os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(conf), 0o600); err != nil {
		s.Stop()
		return nil, err
	}
	_ = os.MkdirAll("/run/sshd", 0o755) // privilege separation directory
	s.cmd = exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	s.cmd.Stderr = os.Stderr
	if err := s.cmd.Start(); err != nil {
		s.Stop()
		return nil, err
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.Port)); err == nil {
			c.Close()
			if err := s.Command(ctx, false, "true").Run(); err == nil {
				return s, nil
			}
		}
	}
	s.Stop()
	return nil, errors.New("sshd did not accept a login within 10s")
}

// Command is an ssh client command for remote; mux uses the ControlMaster
// connection (StartMaster first).
func (s *SSHD) Command(ctx context.Context, mux bool, remote ...string) *exec.Cmd {
	args := []string{"-q", "-p", strconv.Itoa(s.Port), "-i", filepath.Join(s.dir, "user"),
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
		"-c", "aes128-gcm@openssh.com"}
	if mux {
		args = append(args, "-o", "ControlPath="+s.control, "-o", "ControlMaster=no")
	} else {
		args = append(args, "-o", "ControlMaster=no", "-o", "ControlPath=none")
	}
	args = append(args, "127.0.0.1")
	return exec.CommandContext(ctx, "ssh", append(args, remote...)...)
}

// FileCommand is an scp or sftp client command (tool) with args, over the
// ControlMaster connection (StartMaster first) and the cipher of Command.
// Remote paths are written "127.0.0.1:PATH".
func (s *SSHD) FileCommand(ctx context.Context, tool string, args ...string) *exec.Cmd {
	opts := []string{"-q", "-P", strconv.Itoa(s.Port), "-i", filepath.Join(s.dir, "user"),
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
		"-c", "aes128-gcm@openssh.com", "-o", "ControlPath=" + s.control, "-o", "ControlMaster=no"}
	return exec.CommandContext(ctx, tool, append(opts, args...)...)
}

// StartMaster opens the ControlMaster connection that mux commands share.
func (s *SSHD) StartMaster(ctx context.Context) error {
	args := []string{"-q", "-N", "-p", strconv.Itoa(s.Port), "-i", filepath.Join(s.dir, "user"),
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
		"-c", "aes128-gcm@openssh.com", "-o", "ControlMaster=yes", "-o", "ControlPath=" + s.control, "127.0.0.1"}
	s.master = exec.Command("ssh", args...)
	if err := s.master.Start(); err != nil {
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(s.control); err == nil {
			return nil
		}
	}
	return errors.New("ssh ControlMaster did not come up")
}

// Stop ends the master and sshd and removes the keys.
func (s *SSHD) Stop() {
	for _, c := range []*exec.Cmd{s.master, s.cmd} {
		if c != nil && c.Process != nil {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
	os.RemoveAll(s.dir)
}

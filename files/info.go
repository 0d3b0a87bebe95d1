package files

import (
	"io/fs"
	"strings"
	"syscall"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

// fileInfo describes fi, named name; target is a symlink's target.
func fileInfo(name string, fi fs.FileInfo, target string) *rexecv1.FileInfo {
	m := fi.Mode()
	info := &rexecv1.FileInfo{
		Name:  name,
		Type:  fileType(m),
		Size:  fi.Size(),
		Mode:  unixMode(m),
		Mtime: timestamppb.New(fi.ModTime()),
	}
	if !utf8.ValidString(name) {
		info.Name, info.NameNotUtf8 = strings.ToValidUTF8(name, "\uFFFD"), true
	}
	if m.Type() == fs.ModeSymlink {
		info.SymlinkTarget = strings.ToValidUTF8(target, "\uFFFD")
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		info.Nlink, info.Uid, info.Gid = uint32(st.Nlink), st.Uid, st.Gid
	}
	return info
}

func fileType(m fs.FileMode) rexecv1.FileType {
	switch {
	case m.IsRegular():
		return rexecv1.FileType_FILE_TYPE_REGULAR
	case m.IsDir():
		return rexecv1.FileType_FILE_TYPE_DIRECTORY
	case m.Type() == fs.ModeSymlink:
		return rexecv1.FileType_FILE_TYPE_SYMLINK
	}
	return rexecv1.FileType_FILE_TYPE_OTHER
}

// typeName names what m is, for messages.
func typeName(m fs.FileMode) string {
	switch t := m.Type(); {
	case m.IsRegular():
		return "regular file"
	case m.IsDir():
		return "directory"
	case t == fs.ModeSymlink:
		return "symlink"
	case t == fs.ModeNamedPipe:
		return "FIFO"
	case t == fs.ModeSocket:
		return "socket"
	case t&fs.ModeCharDevice != 0:
		return "character device"
	case t == fs.ModeDevice:
		return "block device"
	}
	return "special file"
}

// unixMode is m's permission bits with setuid, setgid and sticky as
// stat(2) writes them.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// nlink is fi's hard link count (1 when the platform does not say).
func nlink(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

// sameFile reports whether a and b are the same inode.
func sameFile(a, b fs.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

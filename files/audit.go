package files

import (
	"context"
	"log/slog"

	"google.golang.org/grpc/status"

	"github.com/rexec/rexec/interceptors"
)

// auditResult writes the audit line of a call that changes files (or
// tried to): the caller's facts (interceptors.AuditAttrs), the path, what
// came of it (the gRPC code and, on failure, why), and attrs.
func (s *Service) auditResult(ctx context.Context, msg, path string, err error, attrs ...slog.Attr) {
	l := s.cfg.Audit
	if l == nil {
		return
	}
	all := append(interceptors.AuditAttrs(ctx), slog.String("path", path))
	all = append(all, attrs...)
	st := status.Convert(toStatus(path, err))
	all = append(all, slog.String("code", st.Code().String()))
	if err != nil {
		all = append(all, slog.String("error", st.Message()))
	}
	l.LogAttrs(ctx, slog.LevelInfo, msg, all...)
}

package server

import (
	"context"
	"errors"
	"io"
	"strings"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

type echoService struct {
	rexecv1.UnimplementedEchoServiceServer
}

func echo(msg string, upper bool) string {
	if upper {
		return strings.ToUpper(msg)
	}
	return msg
}

func (echoService) Echo(_ context.Context, req *rexecv1.EchoRequest) (*rexecv1.EchoResponse, error) {
	return &rexecv1.EchoResponse{Message: echo(req.GetMessage(), req.GetUpper())}, nil
}

func (echoService) EchoStream(stream rexecv1.EchoService_EchoStreamServer) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&rexecv1.EchoStreamResponse{Message: echo(req.GetMessage(), req.GetUpper())}); err != nil {
			return err
		}
	}
}

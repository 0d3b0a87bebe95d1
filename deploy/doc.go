// Package deploy holds rexecd's deployment files — a hardened systemd unit
// (systemd/), a container image (docker/) and a Kubernetes DaemonSet with a
// headless Service (kubernetes/) — and, in its tests, a strict decode of the
// manifests into the Kubernetes API types with checks of what they must
// agree on. It is a module of its own so that rexec's module does not carry
// Kubernetes' dependencies: `cd deploy && go test ./...`.
package deploy

package telemetry

import "github.com/rexec/rexec/rawsock/rawserver"

// Raw returns the raw listener's observer (rawserver.Config.Observer): it
// counts handshakes, and refused ones and refused frames as auth failures
// of the raw transport.
func (m *Metrics) Raw() rawserver.Observer { return rawObserver{m} }

type rawObserver struct{ m *Metrics }

func (o rawObserver) Handshake(result, reason string) {
	o.m.handshakes.WithLabelValues(result, reason).Inc()
	if result == rawserver.HandshakeRefused {
		o.m.authFailed.WithLabelValues(TransportRaw, reason).Inc()
	}
}

func (o rawObserver) AuthFailure(kind string) {
	o.m.authFailed.WithLabelValues(TransportRaw, kind).Inc()
}

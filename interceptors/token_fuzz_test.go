package interceptors

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// FuzzParseToken: no input panics the parser; a parsed token formats back
// to exactly its input (so no token has a malleable twin); and no input but
// the exact test vector passes Verify for the vector's key, method,
// authority and time (the v1 vector of the same inputs included).
func FuzzParseToken(f *testing.F) {
	f.Add(vectorToken)
	f.Add(vectorTokenV1)
	f.Add("")
	f.Add(Scheme + " v2;")
	f.Add(Scheme + " v2;kid=ops;ts=0;nonce=;sig=")
	f.Add(strings.Replace(vectorToken, "kid=ops", "kid=opt", 1))
	f.Add(strings.Replace(vectorToken, "ts=1767225600", "ts=1767225601", 1))
	f.Add(vectorToken[:len(vectorToken)-1] + "l")
	f.Add(vectorToken + ";")
	f.Add(strings.Replace(vectorToken, ";", ";;", 1))
	f.Add("Bearer " + vectorToken)
	key := vectorKey(f)
	now := func() time.Time { return time.Unix(vectorTS, 0) }
	f.Fuzz(func(t *testing.T, v string) {
		tok, err := ParseToken(v)
		if err == nil && tok.String() != v {
			t.Fatalf("parsed %q, formats back as %q: two spellings of one token", v, tok.String())
		}
		// A fresh verifier: the vector itself must pass once, not be a replay.
		ver := NewVerifier(NewKeyRing([]*Key{key}), VerifierOptions{Now: now})
		if _, err := ver.Verify(v, call(vectorMethod)); err == nil && v != vectorToken {
			t.Fatalf("accepted %q, which is not the minted token", v)
		}
	})
}

// BenchmarkReplayCache measures the replay cache: heap bytes kept per
// remembered nonce (B/nonce) and the time to remember one (ns/nonce), with
// nonces spread over the 60 s window as steady traffic would put them.
func BenchmarkReplayCache(b *testing.B) {
	const n = 1 << 17
	nonces := make([][nonceLen]byte, n)
	for i := range nonces {
		nonces[i] = [nonceLen]byte{byte(i), byte(i >> 8), byte(i >> 16), 1}
	}
	const now = vectorTS
	var perNonce float64
	b.ReportAllocs()
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := &replayCache{window: 60, max: n, buckets: map[int64]map[[nonceLen]byte]struct{}{}}
		for i, nonce := range nonces {
			if c.add(now, now-int64(i%60), nonce) != replayFresh {
				b.Fatal("refused a fresh nonce")
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perNonce = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(c)
	}
	b.ReportMetric(perNonce, "B/nonce")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/nonce")
}

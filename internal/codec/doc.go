// Package codec is the protobuf codec and the buffer pool that rexec's gRPC
// clients and servers use in place of gRPC's defaults. The wire format is
// gRPC's own "proto" codec; what differs is where the bytes live:
//
//   - gRPC's default pool has tiers of 256 B, 4, 16 and 32 KiB and 1 MiB, so
//     an output chunk or a stdin message of 128 KiB takes a 1 MiB buffer, and
//     it zeroes every buffer it hands out: per 128 KiB moved, 1 MiB cleared
//     and 1 MiB held while the message is in flight, on both ends (the
//     profile of 1 GiB through `rexec run -- cat`: memclr was the largest
//     user-space cost of rexec and rexecd both);
//   - Pool has tiers that rexec's messages fill (a 128 KiB chunk with its
//     framing, a 256 KiB file chunk), and it does not zero: every user writes
//     a buffer's bytes before it reads them (a marshal, a frame read, a copy).
//
// Importing the package puts its codec in the place of gRPC's "proto" codec
// for the whole process; a server takes ServerOptions and a client
// DialOptions so that their transports read frames into the same pool.
package codec

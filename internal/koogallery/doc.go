// Package koogallery is the wire format of the KooGallery (华为云云商店) V2 production interface, the seller's side
// of it: canonical JSON and the two-level HMAC the marketplace signs requests with (spec §3.2), the Body-Sign
// header the seller signs every response with (§3.4), the result codes (§9.1), and the parsing and field
// validation of each activity's request (§5).
//
// It holds no HTTP server, no Temporal and no SQL, so the gateway, the load generator and tests can all share
// exactly one implementation of the bytes that cross the wire.
package koogallery

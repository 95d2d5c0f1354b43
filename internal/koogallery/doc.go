// Package koogallery is the wire format of the KooGallery (华为云云商店) V2 production interface, the seller's side of
// it: canonical JSON and the two-level HMAC the marketplace signs requests with (docs/koogallery.md,
// "Request signature"), the Body-Sign header the seller signs every response with ("Response signature"), the
// result codes ("Result codes"), and the parsing and field validation of each activity's request ("Activities").
//
// It holds no HTTP server, no Temporal and no SQL, so the gateway, the load generator and tests can all share
// exactly one implementation of the bytes that cross the wire.
package koogallery

// Package console is a web console for the people who do not write JSON
// specs or read NDJSON bundles: a brand's analysts and its compliance
// officers. It runs on the user's own machine, as kubectl proxy does, and
// signs every request it makes to the room with the user's key through
// package client: the browser never holds the key, and the room needs no
// session machinery (every request still carries a short-lived JWT, is
// decided by the collaboration's policy and is written to the audit log).
//
// # Pages
//
// What the pages show depends on the key's role (Config.Role):
//
//   - a partner or analyst sees its collaborations (members and acceptance,
//     the settings and their digest, NOISE OFF in capitals, the constraints
//     in force, datasets, relay and match status, the privacy budget as a
//     gauge and over time) and a query builder whose answer comes back as
//     the JSON spec it sent, a table, bar charts by segment and a CSV file;
//     a refusal shows the policy's reasons;
//   - an auditor or room auditor sees the audit log the room lets it export,
//     as a timeline filtered by principal, action, collaboration, decision
//     and time, each entry's detail, the budget reconciled from the log, and
//     the latest signed checkpoint. The bundle is checked by package
//     audit/bundle, the verifier of cleanroom audit verify, with the room's
//     verifier key; the exact bytes it checked download as the bundle the
//     CLI verifies.
//
// Everything is rendered on the server with html/template; charts are SVG
// drawn on the server; the stylesheet is embedded. The pages run no
// JavaScript and load nothing from anywhere but the console.
//
// # Security
//
// The console listens on loopback only. It answers only requests whose Host
// is its own address (so a rebound DNS name cannot reach it), serves its
// pages under a random path of its own, and answers only requests that
// carry the per-run token it prints in its URL: opening that URL sets an
// HttpOnly, SameSite=Strict cookie of the console's own, scoped to that
// path (browsers send a host's cookies to all its ports, so a cookie for
// "/" would reach other local servers), and redirects to the same page
// without the token. State-changing requests
// (POST) are refused when they come from another origin
// (http.CrossOriginProtection: Sec-Fetch-Site, then Origin against Host).
// Every answer carries a strict Content-Security-Policy (no script at all,
// styles and images from the console only, forms posting to the console
// only, no framing). Query specs travel in POST bodies; URLs hold page
// names, collaboration ids, entry indexes and random result ids, never a
// data value; the log records method, route and status only.
package console

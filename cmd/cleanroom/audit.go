package main

import (
	"bufio"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"golang.org/x/mod/sumdb/note"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/audit/bundle"
	"github.com/opencleanroom/cleanroom/cleanroom"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
)

const auditUsage = `Usage:
  cleanroom audit export --room URL --key AUDITOR_KEY --out FILE [--as ID] [--from N] [--to N] [--since CHECKPOINT_FILE]
  cleanroom audit export --data DIR --out FILE [--from N] [--to N] [--since CHECKPOINT_FILE]
  cleanroom audit verify FILE --key KEY [--since CHECKPOINT_FILE] [--save-checkpoint FILE] [--request-id ID [--request-token TOKEN]] [--json]
  cleanroom audit request-token ID --room URL --key KEY [--as ID]
  cleanroom audit request-token ID --data DIR --principal ID

export writes an audit bundle that verify checks offline. With --room it
asks the running room for what this auditor may see: an auditor's bundle
holds the entries that concern its partner, each with its inclusion proof;
a room auditor's or the operator's, the whole log. With --data it reads a
stopped (or crashed) room's data directory, without changing it: the whole
log. With --since, the bundle carries the checkpoint you kept back, with
its consistency proof, for verify --since. verify exits 0 only when every
check passes. request-token prints the token of one of a principal's
requests: with it, verify --request-id finds that request's entries, and
no other's.
`

func runAudit(e *env, args []string) error {
	return runSubcommand(e, "audit", auditUsage, args, []subcommand{
		{"export", runAuditExport},
		{"verify", runAuditVerify},
		{"request-token", runAuditRequestToken},
	})
}

func runAuditExport(e *env, args []string) error {
	fs := newFlags(e, "audit export", "(--room URL --key KEY | --data DIR) --out FILE [--from N] [--to N] [--since CHECKPOINT_FILE]", `
Writes an audit bundle of entries FROM..TO-1 (default: all, up to the latest
signed checkpoint). With --room, the room decides what the key's principal
may see (format `+audit.SparseBundleFormat+` for an auditor,
`+audit.BundleFormat+` for a room auditor or the operator). With --data,
the whole log of a stopped room's data directory (`+audit.BundleFormat+`);
a directory left by a crash is read through a recovered copy in $TMPDIR.
With --since, a checkpoint of the room's you kept (audit verify
--save-checkpoint keeps the one a bundle verified against), the bundle
proves the log extends it:
checked here with --room up to the latest checkpoint, and by verify --since.`)
	rf, data := roomOrDataFlags(fs, "a stopped room's data directory, to export from disk")
	out := fs.String("out", "", "bundle file to write (required)")
	from := fs.Int64("from", 0, "first entry to export")
	to := fs.Int64("to", 0, "export entries before this index (default: up to the latest checkpoint)")
	sinceFile := fs.String("since", "", "a signed checkpoint of the room's saved earlier, which the bundle is to prove the log extends")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *data == "" {
		rf.fromEnv()
	}
	if (*data == "") == (*rf.room == "") || *out == "" {
		return usagef("--out and one of --room or --data are required")
	}
	var since []byte
	if *sinceFile != "" {
		var err error
		if since, err = os.ReadFile(*sinceFile); err != nil {
			return err
		}
	}
	if *data != "" {
		return exportData(e, *data, *out, *from, *to, since)
	}
	c, err := rf.connect(e)
	if err != nil {
		return err
	}
	if since != nil {
		v, err := note.NewVerifier(c.Room().VerifierKey)
		if err != nil {
			return fmt.Errorf("the room's verifier key: %w", err)
		}
		if _, err := audit.ParseCheckpoint(since, v); err != nil {
			return withHint(errors.New("--since: not a checkpoint of this room's"), "pass a checkpoint this room signed, as audit verify --save-checkpoint saves it")
		}
	}
	// Up to the latest checkpoint, the bundle must hold this export's own
	// entry: a room that answered with an older bundle (hiding what was
	// logged since) is caught here, not trusted later.
	var fe client.FreshExport
	err = writeNew(*out, func(w io.Writer) (err error) {
		if *to != 0 {
			return c.ExportAuditRange(e.Context(), w, *from, *to, since)
		}
		fe, err = c.ExportAuditFresh(e.Context(), w, *from, since)
		return err
	})
	if err != nil {
		return explain(err)
	}
	if fe.RequestID() != "" {
		if err := checkFresh(c, *out, fe, since); err != nil {
			os.Remove(*out)
			return withHint(fmt.Errorf("the room's bundle failed its check: %w", err), "the room's answer is not its current log; keep your earlier bundles and checkpoints, and tell the other members' auditors")
		}
	}
	fmt.Fprintf(e.stderr, "cleanroom audit export: wrote %s (log %s, as %s)\n", *out, c.Room().AuditOrigin, c.Principal())
	return nil
}

// checkFresh checks the bundle file path with c.CheckFresh.
func checkFresh(c *client.Client, path string, fe client.FreshExport, since []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return c.CheckFresh(bufio.NewReader(f), fe, since)
}

// exportData exports the whole log of a room's data directory, proving it
// extends since if given.
func exportData(e *env, data, out string, from, to int64, since []byte) error {
	ctx := e.Context()
	l, err := openDataLog(e, data, "export")
	if err != nil {
		return err
	}
	defer l.Close()
	var extends *audit.Checkpoint
	if since != nil {
		// The log, opened without the room's key, takes it unverified:
		// verify --since checks its signature with the key the auditor
		// trusts.
		if extends, err = l.ReaderCheckpoint(since); err != nil {
			return withHint(errors.New("--since: not a checkpoint of this log's"), "pass a checkpoint this room signed")
		}
	}
	if err := writeNew(out, func(w io.Writer) error { return l.Export(ctx, w, from, to, extends) }); err != nil {
		return err
	}
	c, _ := l.LatestCheckpoint(ctx)
	fmt.Fprintf(e.stderr, "cleanroom audit export: wrote %s (log %s, checkpoint of %d entries)\n", out, l.Origin(), c.Size)
	return nil
}

// roomOrDataFlags declares the flags of a verb that reads the log from a
// running room (--room, --key, --as) or from a stopped room's data
// directory (--data, described by dataUsage).
func roomOrDataFlags(fs *verbFlags, dataUsage string) (*roomFlags, *string) {
	rf := &roomFlags{
		room: fs.String("room", "", "the room's URL (or $CLEANROOM_ROOM, without --data)"),
		key:  fs.String("key", "", "your key file, from cleanroom keygen, with --room (or $CLEANROOM_KEY)"),
		as:   fs.String("as", "", "the principal id the room knows your key by (default: the key's name)"),
	}
	return rf, fs.String("data", "", dataUsage)
}

// fromEnv names the room and key from the environment where the flags did
// not, as for every verb that talks to a room; a verb given --data does
// not call it, so the environment does not make --data ambiguous.
func (f *roomFlags) fromEnv() {
	if *f.room == "" {
		*f.room = os.Getenv("CLEANROOM_ROOM")
	}
	if *f.key == "" {
		*f.key = os.Getenv("CLEANROOM_KEY")
	}
}

// openDataLog opens the audit log of a stopped room's data directory for
// reading, for the verb audit verb.
func openDataLog(e *env, data, verb string) (*audit.Log, error) {
	l, err := audit.OpenForExport(e.Context(), cleanroom.DataDir(data).Database(), "", audit.Options{})
	if err != nil {
		if _, serr := os.Stat(cleanroom.DataDir(data).Database()); serr != nil {
			return nil, withHint(fmt.Errorf("no room data in %s", data), "pass the directory given to cleanroom serve --data")
		}
		return nil, withHint(err, "stop the room first: "+verb+" reads its data directory directly")
	}
	return l, nil
}

// writeNew writes a new file with fn, removing it if fn fails.
func writeNew(path string, fn func(w io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return withHint(err, "choose a new --out file")
	}
	w := bufio.NewWriter(f)
	err = fn(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

func runAuditVerify(e *env, args []string) error {
	// The bundle comes first in the synopsis; flag stops at the first
	// non-flag, so take it out before parsing.
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	fs := newFlags(e, "audit verify", "FILE --key KEY [--since CHECKPOINT_FILE] [--save-checkpoint FILE] [--request-id ID [--request-token TOKEN]] [--json]", `
Verifies an audit bundle offline. KEY is the room's signed-note verifier key
("origin+hash+key", as printed by the room), given literally or as a file, or
a file holding the room's JWK set. With --since, also proves that the log
extends a checkpoint saved earlier (a log rolled back or rewritten since then
fails); the bundle must have been exported with --since the same file. With
--save-checkpoint, a bundle that verifies leaves its signed checkpoint there,
for the next export and verify --since (the same file as --since is fine).
With --request-id, it also lists the bundle's entries of the request that
was answered under that X-Request-Id (as the room's own logs name it). An
entry holds the id's digest under its sender's request key, never the id:
--request-token is the request's token, as the sender's audit request-token
prints it; without it, only entries logged before ids were keyed are found.`)
	keyArg := fs.String("key", "", "the room's public key: verifier key, or a file with it or with a JWK set (required)")
	since := fs.String("since", "", "a signed checkpoint saved earlier")
	save := fs.String("save-checkpoint", "", "once the bundle verifies, write its signed checkpoint to this file")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	requestID := fs.String("request-id", "", "list the entries of the request answered under this X-Request-Id")
	tokenArg := fs.String("request-token", "", "with --request-id: the request's token (hex, from the sender's audit request-token)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if file == "" || *keyArg == "" {
		return usagef("a bundle FILE and --key are required")
	}
	if *requestID != "" && !api.ValidRequestID(*requestID) {
		return usagef("a request ID is 1 to 64 of A-Z a-z 0-9 . _ -")
	}
	var token []byte
	if *tokenArg != "" {
		var err error
		if token, err = hex.DecodeString(*tokenArg); err != nil || len(token) != bundle.RequestKeySize {
			return usagef("--request-token must be %d bytes in hex, as audit request-token prints it", bundle.RequestKeySize)
		}
		if *requestID == "" {
			return usagef("--request-token goes with --request-id")
		}
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	v, err := loadVerifier(*keyArg, file)
	if err != nil {
		return withHint(err, "pass the verifier key the room prints, or its /.well-known/jwks.json")
	}
	var prev []byte
	if *since != "" {
		if prev, err = os.ReadFile(*since); err != nil {
			return err
		}
	}
	type requestEntry struct {
		Index int64       `json:"index"`
		Entry audit.Entry `json:"entry"`
	}
	var ofRequest []requestEntry
	rep, err := audit.VerifyEntries(bufio.NewReaderSize(f, 1<<20), v, prev, func(i int64, en audit.Entry) error {
		// The token finds the entries keyed with it; the id, those logged
		// before ids were keyed.
		if *requestID != "" && (audit.IsRequestToken(en, token) || audit.IsRequest(en, nil, *requestID)) {
			ofRequest = append(ofRequest, requestEntry{i, en})
		}
		return nil
	})
	if err != nil {
		if origin, oerr := bundleOrigin(file); oerr == nil && origin != v.Name() {
			// Not a forged log: a key of another room's.
			err = withHint(err, fmt.Sprintf("the --key is log %s's, the bundle says it is log %s's: pass the verifier key of the room that wrote it", v.Name(), origin))
		}
	}
	if *asJSON {
		res := map[string]any{"ok": err == nil}
		if err != nil {
			res["error"] = err.Error()
			var ve *audit.VerifyError
			if errors.As(err, &ve) && ve.Index >= 0 {
				res["first_bad_index"] = ve.Index
			}
		} else {
			res["report"] = rep
			if *requestID != "" {
				res["request_entries"] = ofRequest
			}
		}
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
	}
	if err != nil {
		return err
	}
	if *save != "" {
		// The checkpoint Verify checked the entries against, not one read
		// from the file again.
		if err := writeFileAtomic(*save, []byte(rep.Checkpoint)); err != nil {
			return fmt.Errorf("saving the checkpoint: %w", err)
		}
	}
	if !*asJSON {
		if rep.Format == audit.SparseBundleFormat {
			fmt.Fprintf(e.stdout, "OK: %d entries of log %s, each proved included in its signed checkpoint of %d entries; %d checkpoints consistent\n",
				rep.Entries, rep.Origin, rep.TreeSize, rep.Checkpoints)
			if rep.Scope != "" {
				fmt.Fprintf(e.stdout, "scope (as the room describes it): %s\n", rep.Scope)
			}
		} else {
			fmt.Fprintf(e.stdout, "OK: %d entries (%d..%d) of log %s verified against its signed checkpoint of %d entries; %d checkpoints consistent\n",
				rep.Entries, rep.From, rep.To-1, rep.Origin, rep.TreeSize, rep.Checkpoints)
		}
		if rep.Since > 0 {
			fmt.Fprintf(e.stdout, "OK: the log extends your checkpoint of %d entries\n", rep.Since)
		}
		if *requestID != "" {
			by := ""
			if token != nil {
				// The token picks the entries: it is the id's only if the
				// sender gave the token of that id.
				by = " (found by its token)"
			}
			fmt.Fprintf(e.stdout, "request %s%s: %d %s in this bundle\n", *requestID, by, len(ofRequest), plural(len(ofRequest), "entry", "entries"))
			if len(ofRequest) == 0 && token == nil {
				fmt.Fprintln(e.stderr, "hint: an entry holds its request id keyed by its sender: pass --request-token, which the sender's cleanroom audit request-token ID prints")
			}
			for _, r := range ofRequest {
				verdict := "allowed"
				if !r.Entry.Decision.Allow {
					verdict = "refused"
				}
				fmt.Fprintf(e.stdout, "  entry %d: %s %s %s %s", r.Index, r.Entry.Time.Format(time.RFC3339), r.Entry.Principal, r.Entry.Action, verdict)
				if r.Entry.Collaboration != "" {
					fmt.Fprintf(e.stdout, " (collaboration %s)", r.Entry.Collaboration)
				}
				fmt.Fprintln(e.stdout)
			}
		}
	}
	return nil
}

// loadVerifier reads the room's key: a verifier key literal, or a file with
// a verifier key or a JWK set. A JWK set has no name, so the bundle's origin
// names the key; the signature must still verify under it.
func loadVerifier(arg, bundleFile string) (note.Verifier, error) {
	text := arg
	if b, err := os.ReadFile(arg); err == nil {
		text = strings.TrimSpace(string(b))
	} else if !strings.Contains(arg, "+") {
		return nil, err
	}
	if !strings.HasPrefix(text, "{") {
		v, err := note.NewVerifier(text)
		if err != nil {
			return nil, fmt.Errorf("not a verifier key: %w", err)
		}
		return v, nil
	}
	set, err := jwk.Parse([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("key file is neither a verifier key nor a JWK set")
	}
	var pub ed25519.PublicKey
	for i := range set.Len() {
		k, _ := set.Key(i)
		var raw any
		if k.Raw(&raw) == nil {
			if p, ok := raw.(ed25519.PublicKey); ok {
				pub = p
			}
		}
	}
	if pub == nil {
		return nil, errors.New("JWK set holds no Ed25519 public key")
	}
	origin, err := bundleOrigin(bundleFile)
	if err != nil {
		return nil, err
	}
	vkey, err := audit.VerifierKey(origin, pub)
	if err != nil {
		return nil, err
	}
	return note.NewVerifier(vkey)
}

func bundleOrigin(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, err := bufio.NewReader(io.LimitReader(f, bundle.MaxHeader)).ReadBytes('\n')
	if err != nil {
		return "", errors.New("bundle has no header line")
	}
	var h struct {
		Origin string `json:"origin"`
	}
	if err := json.Unmarshal(line, &h); err != nil || h.Origin == "" {
		return "", errors.New("bundle header names no origin")
	}
	return h.Origin, nil
}

func runAuditRequestToken(e *env, args []string) error {
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	fs := newFlags(e, "audit request-token", "ID (--room URL --key KEY [--as ID] | --data DIR --principal ID)", `
Prints the token of request ID (its X-Request-Id), in hex: the audit log
holds a request's id as a digest under its sender's request key, which the
room gives the sender alone, and the token finds that one request's
entries (audit verify --request-id ID --request-token TOKEN) and no
other's. With --room, the token of a request of the key's principal. With
--data, of any principal's, from a stopped room's data directory.`)
	rf, data := roomOrDataFlags(fs, "a stopped room's data directory")
	principal := fs.String("principal", "", "with --data: whose request")
	if err := fs.parse(args); err != nil {
		return err
	}
	if id == "" {
		return usagef("the request ID comes first: cleanroom audit request-token ID --room URL --key KEY")
	}
	if !api.ValidRequestID(id) {
		return usagef("a request ID is 1 to 64 of A-Z a-z 0-9 . _ - (the room answered a request sent with another under an id of its own)")
	}
	var key []byte
	if *data != "" {
		if *principal == "" || *rf.room != "" {
			return usagef("--data goes with --principal, without --room")
		}
		l, err := openDataLog(e, *data, "request-token")
		if err != nil {
			return err
		}
		defer l.Close()
		if key, err = l.RequestKey(*principal); errors.Is(err, audit.ErrNoRequestKey) {
			return withHint(err, "this room keyed no request ids: audit verify --request-id finds its entries without a token")
		} else if err != nil {
			return err
		}
	} else {
		if *principal != "" {
			return usagef("--principal goes with --data; with --room the token is of your own request")
		}
		rf.fromEnv()
		c, err := rf.connect(e)
		if err != nil {
			return err
		}
		if key, err = c.RequestKey(e.Context()); err != nil {
			return explain(err)
		}
		*principal = c.Principal()
	}
	fmt.Fprintln(e.stdout, hex.EncodeToString(audit.RequestToken(key, *principal, id)))
	return nil
}

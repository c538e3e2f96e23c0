package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

func runCollab(e *env, args []string) error {
	return runSubcommand(e, "collab", `Usage:
  cleanroom collab create --room URL --key KEY --collab ID --members a,b --kind email [--mode blinded|hashed] [--profile `+strings.Join(crypto.Profiles(), "|")+`] [--settings FILE]
  cleanroom collab accept --room URL --key KEY --collab ID [--settings FILE | --settings-digest HEX] [--pin member=FINGERPRINT]
  cleanroom collab revoke --room URL --key KEY --collab ID

create makes a collaboration under a settings document and delivers its
secret, sealed to each member's key; accept shows the settings and agrees to
them by their digest, then opens the secret; revoke is the kill switch.
`, args, []subcommand{{"create", runCollabCreate}, {"accept", runCollabAccept}, {"revoke", runCollabRevoke}})
}

func parsePins(list string) (map[string]string, error) {
	pins := map[string]string{}
	for _, p := range strings.Split(list, ",") {
		if p == "" {
			continue
		}
		m, fp, ok := strings.Cut(p, "=")
		if !ok {
			return nil, usagef("--pin takes member=fingerprint[,member=fingerprint]")
		}
		pins[m] = fp
	}
	return pins, nil
}

// profilesHelp lists the normalization profiles a collaboration can use
// (crypto.Profiles), with their rules.
func profilesHelp() string {
	var b strings.Builder
	b.WriteString("--profile is the normalization every member's identifiers go through:")
	for _, p := range crypto.Profiles() {
		about := "see the crypto package"
		switch p {
		case crypto.ProfilePAIRv1:
			about = "PAIR's rules: emails trimmed and lowercased, phones in E.164 (the default)"
		case crypto.ProfileGmailv1:
			about = "pair-v1, and Gmail addresses without dots or a +suffix: one mailbox, one key"
		}
		fmt.Fprintf(&b, "\n  %-9s %s", p, about)
	}
	return b.String()
}

const settingsHelp = `The settings document (JSON) holds everything the members agree on; every
key is optional and none may be looser than the room's defaults:
  min_group_size, epsilon_per_query, epsilon_min_per_query, epsilon_budget,
  epsilon_match, delta_per_query, delta_budget, min_list_size, max_list_size,
  min_upload_difference, max_queries_per_day, max_matches_per_day,
  max_uploads_per_day, allowed_metrics, never_output_columns,
  "allowed_dimensions": ["member.column", ...]   columns queries group, filter and split lift by, models label and split by
  "domains": {"member.column": ["value", ...]}   public groups of a dimension
  "bounds": {"member.column": [low, high]}       numeric columns: sums, averages, ROI, k-means, numeric filters
  "members": {"member": {constraints}}           a member's own requirements
  "noise_off": true                              exact answers (shown in capitals to every member)
  "activation": {"members": ["member"], "min_audience": N, "max_per_day": N, "max_total": N}
                                                 lets those members receive audiences: the rows of their own
                                                 customers in a segment of the overlap, exactly (shown in capitals)
  "expires_in_hours": N`

func runCollabCreate(e *env, args []string) error {
	fs := newFlags(e, "collab create", "--room URL --key KEY --collab ID --members a,b --kind KIND [flags]", `
Creates a collaboration, with you as a member, under the settings in
--settings, makes its secret on this machine and delivers it sealed (HPKE)
to every other member's key. It prints the settings as the room took them
and their digest, which the other members accept.

`+profilesHelp()+"\n\n"+settingsHelp)
	cf := clientFlags(fs)
	id := fs.collabFlag()
	members := fs.String("members", "", "comma-separated partner ids, you included (required)")
	kind := fs.String("kind", "email", "identifier kind: email, phone, maid or custom")
	mode := fs.String("mode", api.ModeBlinded, "matching mode: blinded (PAIR) or hashed (HMAC)")
	profile := fs.String("profile", crypto.ProfilePAIRv1, "normalization profile: "+strings.Join(crypto.Profiles(), " or "))
	settings := fs.String("settings", "", "the settings document, a JSON file (see above)")
	pin := fs.String("pin", "", "member=fingerprint,... keys confirmed out of band (cleanroom fingerprint prints them)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *id == "" || *members == "" {
		return usagef("--collab and --members are required")
	}
	pins, err := parsePins(*pin)
	if err != nil {
		return err
	}
	req := api.CreateCollaboration{ID: *id, Mode: *mode, Profile: *profile, Kind: *kind, Members: strings.Split(*members, ",")}
	// Pins say who the other members are: one for a partner not named
	// would let a room that adds that partner have it sealed the secret.
	for m := range pins {
		if !slices.Contains(req.Members, m) {
			return usagef("--pin names %s, who is not in --members", m)
		}
	}
	if *settings != "" {
		b, err := os.ReadFile(*settings)
		if err != nil {
			return err
		}
		if !json.Valid(b) {
			return withHint(fmt.Errorf("%s is not JSON", *settings), "the settings are one JSON object; see cleanroom collab create -h")
		}
		req.Settings = b
	}
	c, err := cf.connect(e)
	if err != nil {
		return err
	}
	ctx := e.Context()
	v, err := c.CreateCollaboration(ctx, req)
	if p := (*api.Problem)(nil); errors.As(err, &p) && p.Type == api.ProblemConflict {
		// Run again after a failure (a wrong pin, a lost answer): the
		// collaboration this partner made with these terms is taken up
		// where it stopped, and its secret delivered.
		if mine, gerr := c.Collaboration(ctx, *id); gerr == nil && sameTerms(mine, req, c.Principal()) {
			v, err = mine, nil
			fmt.Fprintf(e.stderr, "collaboration %s exists, made by you with these terms: delivering its secret\n", *id)
		} else {
			return withHint(err, "a collaboration with this id exists: choose another id")
		}
	}
	if err != nil {
		return explain(err)
	}
	// The secret is sealed to the members the room lists: they must be
	// the ones named here.
	if got, want := slices.Sorted(slices.Values(v.Members)), slices.Sorted(slices.Values(req.Members)); !slices.Equal(slices.Compact(got), slices.Compact(want)) {
		return fmt.Errorf("the room created the collaboration with the members %s, not %s: no secret was delivered", strings.Join(got, ","), strings.Join(want, ","))
	}
	if err := c.DistributeSecret(ctx, *id, cf.stateDir(), pins); err != nil {
		return explain(err)
	}
	if *cf.json {
		return printJSON(e, v)
	}
	fmt.Fprintf(e.stdout, "collaboration %s created (%s, %s under %s); secret delivered to %s\n",
		v.ID, v.Mode, v.Kind, v.Profile, strings.Join(others(v.Members, c.Principal()), ", "))
	printSettings(e.stdout, v)
	fmt.Fprintf(e.stdout, "the other members accept it with: cleanroom collab accept --collab %s --settings-digest %s\n", v.ID, v.SettingsDigest)
	return nil
}

func others(members []string, me string) []string {
	var out []string
	for _, m := range members {
		if m != me {
			out = append(out, m)
		}
	}
	return out
}

// printSettings shows a collaboration's settings, a key a line, and their
// digest; noise off is flagged in capitals.
func printSettings(w io.Writer, v *api.Collaboration) {
	fmt.Fprintf(w, "settings (digest %s):\n", v.SettingsDigest)
	var fields []json.RawMessage
	var keys []string
	d := json.NewDecoder(bytes.NewReader(v.Settings))
	if t, err := d.Token(); err == nil && t == json.Delim('{') {
		for d.More() {
			k, err := d.Token()
			var val json.RawMessage
			if err != nil || d.Decode(&val) != nil {
				break
			}
			keys, fields = append(keys, fmt.Sprint(k)), append(fields, val)
		}
	}
	if len(keys) == 0 {
		fmt.Fprintln(w, "  (the room's defaults)")
	}
	for i, k := range keys {
		fmt.Fprintf(w, "  %s: %s\n", k, fields[i])
	}
	if v.NoiseOff {
		fmt.Fprintln(w, "  NOISE OFF: every answer is exact; with two queries a member can difference out one person's values")
	}
	if s, err := policy.DecodeSettings(v.Settings); err == nil {
		if a, ok := s.ActivationLimits(); ok {
			fmt.Fprintf(w, "  ACTIVATION: %s may receive audiences, the rows of their own customers in a segment of the overlap:\n", strings.Join(a.Members, ", "))
			fmt.Fprintf(w, "    exact, not noisy, outside the privacy budget (at least %d people, %d a day, %d in all)\n", a.MinAudience, a.MaxPerDay, a.MaxTotal)
		}
	}
	if v.ExpiresAt != nil {
		fmt.Fprintf(w, "  expires %s\n", v.ExpiresAt.Format("2006-01-02 15:04 MST"))
	}
}

// isTerminal reports whether r is an interactive terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func runCollabAccept(e *env, args []string) error {
	fs := newFlags(e, "collab accept", "--room URL --key KEY --collab ID [--settings FILE | --settings-digest HEX] [--pin member=FINGERPRINT]", `
Shows a collaboration's members and settings, then accepts them: with
--settings, only if they are exactly the settings document you agreed to;
with --settings-digest, only if the digest shown is the one you agreed to;
otherwise at a terminal after you confirm. The room refuses any digest but
the collaboration's, so you never agree to terms you were not shown. Then it opens the secret its creator sealed to you,
checking who sealed it (and, with --pin, that key's fingerprint).`)
	cf := clientFlags(fs)
	id := fs.collabFlag()
	digest := fs.String("settings-digest", "", "the digest of the settings you agree to (as collab create or status printed it)")
	agreed := fs.String("settings", "", "the settings document you agreed to (JSON): accept only if they are the collaboration's")
	pin := fs.String("pin", "", "member=fingerprint,... keys confirmed out of band (cleanroom fingerprint prints them)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *id == "" {
		return usagef("--collab is required")
	}
	pins, err := parsePins(*pin)
	if err != nil {
		return err
	}
	c, err := cf.connect(e)
	if err != nil {
		return err
	}
	ctx := e.Context()
	v, err := c.Collaboration(ctx, *id)
	if err != nil {
		return explain(err)
	}
	if got := api.TermsDigest(v); got != v.SettingsDigest {
		return fmt.Errorf("the room's settings digest %s is not the digest of the settings it shows (%s)", v.SettingsDigest, got)
	}
	// Pins first: a room showing keys that do not match is not accepted.
	if err := c.CheckPins(v, pins); err != nil {
		return explain(err)
	}
	fmt.Fprintf(e.stderr, "collaboration %s by %s: %s matching of %s identifiers under %s among %s\n",
		v.ID, v.CreatedBy, v.Mode, v.Kind, v.Profile, strings.Join(v.Members, ", "))
	printSettings(e.stderr, v)
	switch {
	case *agreed != "":
		want, err := agreedDigest(v, *agreed)
		if err != nil {
			return err
		}
		if want != v.SettingsDigest {
			return withHint(fmt.Errorf("the collaboration's settings are not those in %s", *agreed),
				"compare them with the settings above; ask the creator if they are not what you agreed")
		}
	case *digest != "":
		if *digest != v.SettingsDigest {
			return withHint(fmt.Errorf("--settings-digest %s is not this collaboration's (%s)", *digest, v.SettingsDigest),
				"review the settings above; ask the creator if they are not what you agreed")
		}
	case isTerminal(e.stdin):
		fmt.Fprint(e.stderr, "accept these settings? [y/N] ")
		line, _ := bufio.NewReader(e.stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			return fmt.Errorf("not accepted")
		}
	default:
		return usagef("without a terminal, accept with --settings-digest %s after reviewing the settings above", v.SettingsDigest)
	}
	if err := c.Accept(ctx, *id, v.SettingsDigest); err != nil {
		return explain(err)
	}
	if err := c.ReceiveSecret(ctx, *id, cf.stateDir(), pins); err != nil {
		return explain(err)
	}
	fmt.Fprintf(e.stdout, "accepted %s (settings digest %s); its secret is in %s\n", *id, v.SettingsDigest, filepath.Join(string(cf.stateDir()), c.Room().ID))
	return nil
}

// agreedDigest is the digest of v's terms with the settings in file, as the
// room would hold them.
func agreedDigest(v *api.Collaboration, file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return settingsDigest(v, b)
}

// sameTerms reports whether v is the collaboration req would make, made
// by me: what collab create takes up when it is run again.
func sameTerms(v *api.Collaboration, req api.CreateCollaboration, me string) bool {
	settings := req.Settings
	if settings == nil {
		settings = []byte("{}")
	}
	d, err := settingsDigest(v, settings)
	got, want := slices.Sorted(slices.Values(v.Members)), slices.Sorted(slices.Values(req.Members))
	return err == nil && d == v.SettingsDigest && v.CreatedBy == me && v.Mode == req.Mode && v.Kind == req.Kind &&
		v.Profile == req.Profile && slices.Equal(slices.Compact(got), slices.Compact(want))
}

// settingsDigest is the digest of v's terms with the settings document b.
func settingsDigest(v *api.Collaboration, b []byte) (string, error) {
	s, err := policy.DecodeSettings(b)
	if err != nil {
		return "", withHint(err, "see cleanroom collab create -h for the settings document")
	}
	canon, err := s.Canonical()
	if err != nil {
		return "", err
	}
	return api.TermsDigest(&api.Collaboration{ID: v.ID, Mode: v.Mode, Profile: v.Profile, Kind: v.Kind, Members: v.Members, Settings: canon}), nil
}

func runCollabRevoke(e *env, args []string) error {
	v := newCollabVerb(e, "collab revoke", "--room URL --key KEY --collab ID", `
Revokes the collaboration: from now on it touches no data and every query
is refused, and the room deletes its data (every member's uploads, relay
tasks, joins and audiences) before it answers; the deletion is in the
audit log. It cannot be undone.`)
	c, err := v.start(args)
	if err != nil {
		return err
	}
	if err := c.Revoke(e.Context(), *v.collab); err != nil {
		return explain(err)
	}
	return v.print(map[string]any{"revoked": *v.collab}, func() {
		fmt.Fprintf(e.stdout, "revoked %s; the room deletes its data (cleanroom status shows when)\n", *v.collab)
	})
}

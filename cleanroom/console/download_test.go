package console

import (
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestCSVDownload: the answer's CSV link gives the rows the page showed,
// as an attachment, and only to the console's own browser.
func TestCSVDownload(t *testing.T) {
	f := alliance(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cu, err := f.startConsole(ctx, analyst, RoleAnalyst)
	if err != nil {
		t.Fatal(err)
	}
	in := httpClient(t)
	login(t, in, cu)
	form := url.Values{"count": {"on"}, "group_by": {brandA + ".age_band"}, "epsilon": {"0.2"}, "do": {"run"}}
	req, _ := http.NewRequest("POST", cu.base+"/c/"+collab+"/query", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", cu.origin)
	resp, err := in.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	link := regexp.MustCompile(`href="(/s/[^"/]+/results/[0-9a-f]+\.csv)"`).FindSubmatch(page)
	if resp.StatusCode != http.StatusOK || link == nil {
		t.Fatalf("query page: %d, CSV link %q", resp.StatusCode, link)
	}
	for _, tc := range []struct {
		name   string
		client *http.Client
		want   int
	}{{"without the cookie", http.DefaultClient, http.StatusForbidden}, {"from the console's browser", in, http.StatusOK}} {
		resp, err := tc.client.Get(cu.origin + string(link[1]))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Fatalf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
		if tc.want != http.StatusOK {
			continue
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
			t.Errorf("headers %v", resp.Header)
		}
		recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		want := cu.srv.results.latest().res
		if len(recs) != len(want.Rows)+1 || strings.Join(recs[0], ",") != brandA+".age_band,count" {
			t.Fatalf("CSV %q for %d rows", recs, len(want.Rows))
		}
		for i, r := range recs[1:] {
			n, _ := want.Rows[i][1].(float64)
			if r[0] != want.Rows[i][0] || r[1] != strconv.FormatFloat(n, 'f', -1, 64) {
				t.Errorf("CSV row %v, the room answered %v", r, want.Rows[i])
			}
		}
	}
	resp, err = in.Get(cu.base + "/results/0123456789abcdef01234567.csv")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown result: %d", resp.StatusCode)
	}
}

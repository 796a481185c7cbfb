package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/repermit/repermit/crm"
	"github.com/repermit/repermit/invite/web"
)

// The pages over a store, in-process (as the demo runs them): build the
// handler, serve it, Close it after the HTTP server has stopped.
func ExampleNew() {
	dir, _ := os.MkdirTemp("", "repermit-example")
	defer os.RemoveAll(dir)
	st, err := crm.Open(context.Background(), filepath.Join(dir, "repermit.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()

	pages := web.New(st, web.Options{Business: web.Business{Name: "Example Coffee Roasters"}})
	srv := httptest.NewServer(pages)
	resp, err := http.Get(srv.URL + "/healthz")
	if err == nil {
		fmt.Println(resp.StatusCode, resp.Header.Get("Referrer-Policy"))
		resp.Body.Close()
	}
	srv.Close()
	pages.Close()
	// Output: 200 no-referrer
}

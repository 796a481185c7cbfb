// Package web serves the pages behind the links of an invitation: the
// confirmation page (/c), one-click unsubscribe (/u) and the preference page
// (/p). This is where consent happens, so the rules are strict:
//
//   - GET and HEAD only ever log a visit. Mail security scanners fetch every
//     link and run its JavaScript; only a person pressing a button (a POST)
//     records consent, and no page submits itself.
//   - A confirmation is shown as successful only after its transaction is
//     durable on disk; it records the exact statement shown (version and
//     SHA-256), the IP, the user agent, the campaign and the invitation.
//   - Pages carry no external assets, no script, and headers that keep the
//     token in the URL from leaking (no referrer, no caching, no framing).
//
// Many people answer at once after a send, and every answer must be fsynced;
// the server therefore writes through a crm.GroupCommit so that one fsync
// covers every answer waiting at that moment.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/repermit/repermit/crm"
	"golang.org/x/time/rate"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Business is who the pages speak for; every page shows it.
type Business struct {
	Name       string
	Address    string
	PrivacyURL string
	// WhatsAppNumber, when set, adds an "Open WhatsApp" link (wa.me) to the
	// success page.
	WhatsAppNumber string
}

// Options configure the server. The zero value works (with a generic
// business name).
type Options struct {
	Business Business
	// TrustProxy makes the server take the client IP from X-Forwarded-For
	// (the address the proxy saw) or X-Real-IP. Set it only behind a proxy
	// that sets those headers: otherwise anyone can forge the IP recorded as
	// evidence.
	TrustProxy bool
	// DefaultRegion (ISO 3166 alpha-2) parses numbers typed without a
	// country code when the contact has no country.
	DefaultRegion string
	// PostRate and PostBurst limit POSTs to /c and /p per client IP
	// (default 2 per second, bursts of 20; rate.Inf disables the limit).
	// One-click unsubscribes are exempt: mail providers send them for many
	// people from a few addresses, and an opt-out must never be refused.
	PostRate  rate.Limit
	PostBurst int
	// MaxBodyBytes caps a request body (default 16 KiB; the forms need
	// well under 1 KiB).
	MaxBodyBytes int64
	// Logger receives one line per request (route, status, duration; never
	// a token, email or phone) and errors. Default: discard.
	Logger *slog.Logger
	// Receipt, when set, offers the person a consent receipt of their
	// confirmation (GET /r/{token}, linked from the success page).
	Receipt *crm.ReceiptOptions
	// SingleWrites makes every request commit its own transaction instead
	// of going through group commit. It exists to measure the difference.
	SingleWrites bool
}

// Server is the http.Handler of the pages. Close it after the HTTP server
// has shut down: it flushes the writes still queued.
type Server struct {
	st      *crm.Store
	opt     Options
	gc      *crm.GroupCommit
	limiter *ipLimiter
	pages   map[string]*template.Template
	mux     *http.ServeMux
	log     *slog.Logger
	css     []byte

	lookup     *crm.LookupStmt // loadInvitationSQL; nil: the store's pool runs it
	mu         sync.Mutex
	statements map[statementKey]crm.Statement
	settings   map[int64]parsedSettings // by campaign id
	done       map[doneKey]*donePage    // the success page cut at its holes
	headers    http.Header              // securityHeaders, shared (setHeaders)
	bufs       sync.Pool                // *[]byte for writeDone
	lastExpiry atomic.Pointer[parsedTime]
}

var _ http.Handler = (*Server)(nil)

// New builds the handler over st. It starts the store's group commit
// writer; call Close when done.
func New(st *crm.Store, opt Options) *Server {
	if opt.Business.Name == "" {
		opt.Business.Name = "us"
	}
	if opt.PostRate == 0 {
		opt.PostRate = 2
	}
	if opt.PostBurst <= 0 {
		opt.PostBurst = 20
	}
	if opt.MaxBodyBytes <= 0 {
		opt.MaxBodyBytes = 16 << 10
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		st:      st,
		opt:     opt,
		limiter: newIPLimiter(opt.PostRate, opt.PostBurst),
		pages:   parsePages(),
		log:     opt.Logger,

		statements: map[statementKey]crm.Statement{},
		settings:   map[int64]parsedSettings{},
		done:       map[doneKey]*donePage{},
		headers:    securityHeaders(),
	}
	s.css, _ = assets.ReadFile("static/style.css")
	// Every page runs this query: prepare it once per connection, on
	// connections with a small page cache, run without database/sql (see
	// crm.LookupStmt). A lookup holds its connection in C for ~40 µs, so
	// more connections than cores buy nothing. Should it fail (an older
	// schema), the store's pool runs it and load() reports the error on
	// each request.
	if l, err := st.OpenLookupStmt(loadInvitationSQL, min(max(runtime.GOMAXPROCS(0), 2), 8)); err == nil {
		s.lookup = l
	}
	if !opt.SingleWrites {
		s.gc = st.NewGroupCommit(crm.GroupCommitOptions{})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /c/{token}", s.confirmGet)
	mux.HandleFunc("POST /c/{token}", s.confirmPost)
	mux.HandleFunc("GET /u/{token}", s.unsubscribeGet)
	mux.HandleFunc("POST /u/{token}", s.unsubscribePost)
	mux.HandleFunc("GET /p/{token}", s.preferencesGet)
	mux.HandleFunc("POST /p/{token}", s.preferencesPost)
	mux.HandleFunc("GET /r/{token}", s.receiptGet)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /static/style.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Write(s.css)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.message(w, r, http.StatusNotFound, pickLang("", r.Header.Get("Accept-Language")), "nf_title", "nf_text")
	})
	s.mux = mux
	return s
}

// Close flushes and stops the group commit writer.
func (s *Server) Close() error {
	var err error
	if s.gc != nil {
		err = s.gc.Close()
	}
	if s.lookup != nil {
		s.lookup.Close()
	}
	return err
}

// parsePages parses each page together with the layout. The templates are
// embedded, so a failure is a bug in this package: it panics.
func parsePages() map[string]*template.Template {
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		pages[base] = template.Must(template.New(base).ParseFS(assets, "templates/layout.html", n))
	}
	return pages
}

// securityHeaders go on every response: tokens are in the URLs, so nothing
// may be cached, framed or sent on as a referrer; no script may run.
func securityHeaders() http.Header {
	return http.Header{
		"Content-Security-Policy": {"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"},
		"X-Frame-Options":         {"DENY"},
		"Referrer-Policy":         {"no-referrer"},
		"Cache-Control":           {"no-store"},
		"X-Content-Type-Options":  {"nosniff"},
	}
}

// setHeaders sets the headers of from on h. The value slices are shared
// by every response and never changed (each holds one value at full
// capacity: Header.Set replaces a slice, Header.Add appends to a copy), so
// a response costs no allocation or key canonicalisation for them (~1 µs).
func setHeaders(h, from http.Header) {
	for k, v := range from {
		h[k] = v[:1:1]
	}
}

// statusWriter remembers the status for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ServeHTTP adds the security headers, the body limit and the POST rate
// limit around the routes, and logs each request without its token.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	setHeaders(w.Header(), s.headers)
	sw := &statusWriter{ResponseWriter: w}
	r.Body = http.MaxBytesReader(sw, r.Body, s.opt.MaxBodyBytes)
	if r.Method == http.MethodPost && s.limiter.limit != rate.Inf && !strings.HasPrefix(r.URL.Path, "/u/") && !s.limiter.allow(s.clientIP(r), start) {
		sw.Header().Set("Retry-After", "60")
		s.message(sw, r, http.StatusTooManyRequests, pickLang("", r.Header.Get("Accept-Language")), "rate_title", "rate_text")
	} else {
		s.mux.ServeHTTP(sw, r)
	}
	// Building the line's arguments allocates; skip it when nobody reads it.
	if !s.log.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	route := r.Pattern
	if route == "" || route == "/" {
		route = r.Method + " (unknown path)"
	}
	s.log.Info("request", "route", route, "status", sw.status, "ms", float64(time.Since(start).Microseconds())/1000)
}

// clientIP is the address recorded as evidence and used for the rate
// limit. Forwarded headers count only behind --trust-proxy; then the last
// X-Forwarded-For entry is the one our proxy added (earlier ones come from
// the client and can be forged).
func (s *Server) clientIP(r *http.Request) string {
	if s.opt.TrustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if ip := strings.TrimSpace(parts[len(parts)-1]); net.ParseIP(ip) != nil {
				return ip
			}
		}
		if ip := strings.TrimSpace(r.Header.Get("X-Real-IP")); net.ParseIP(ip) != nil {
			return ip
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// write runs fn in a durable transaction: group commit unless disabled.
func (s *Server) write(ctx context.Context, fn func(tx *crm.Tx) error) error {
	if s.gc != nil {
		return s.gc.Update(ctx, fn)
	}
	return s.st.Update(ctx, fn)
}

// Serve serves h on ln until ctx is done, then shuts down gracefully:
// requests in flight finish (up to 10 s). The timeouts bound what a slow or
// malicious client can hold. Meanwhile the garbage collector runs less
// often (tuneGCForServing).
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	defer tuneGCForServing()()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// ListenAndServe listens on addr and calls Serve.
func ListenAndServe(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another server running there? pick another --addr)", addr, err)
	}
	return Serve(ctx, ln, h, log)
}

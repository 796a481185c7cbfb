// Command repermit moves a CRM audience to WhatsApp with fresh, provable
// consent. main.go builds the cli.App; each command group has its own file
// that turns flags into plain values and calls a package.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes of the contract.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// usageError is a mistake in how the command was called (exit 2). Hint says
// what to type instead.
type usageError struct {
	msg, hint string
}

func (e *usageError) Error() string { return e.msg }

func usagef(hint, format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), hint: hint}
}

// hintError is an operation that failed with advice on what to do next.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hintError{err: err, hint: hint}
}

// run is main without the process: tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	var unknown string
	app.CommandNotFound = func(c *cli.Context, name string) { unknown = name }
	err := app.RunContext(ctx, flagsFirst(app, args))
	if err == nil && unknown != "" {
		err = usagef("repermit --help", "no command %q", unknown)
	}
	if err == nil {
		return exitOK
	}
	var ue *usageError
	var he *hintError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "Error: %s\n", ue.msg)
		if ue.hint != "" {
			fmt.Fprintf(stderr, "Try: %s\n", ue.hint)
		}
		return exitUsage
	case errors.As(err, &he):
		fmt.Fprintf(stderr, "Error: %s\n", he.err)
		fmt.Fprintf(stderr, "Try: %s\n", he.hint)
		return exitFailed
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "Error: interrupted; run the same command again to resume")
		return exitFailed
	default:
		fmt.Fprintf(stderr, "Error: %s\n", err)
		return exitFailed
	}
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  "repermit",
		Usage: "move a CRM audience to WhatsApp with fresh, provable consent",
		Description: "Imports CRM exports, emails an invitation to opt in to WhatsApp to everyone who consented to email,\n" +
			"records each confirmation as evidence, and exports segments of confirmed WhatsApp opt-ins.",
		Reader:    stdin,
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "db", Value: "./repermit.db", EnvVars: []string{"REPERMIT_DB"}, Usage: "the SQLite database file"},
			&cli.StringFlag{Name: "config", EnvVars: []string{"REPERMIT_CONFIG"}, Usage: "the config file (default ./repermit.toml when present)"},
		},
		OnUsageError: func(c *cli.Context, err error, isSubcommand bool) error {
			hint := "repermit --help"
			if c.Command != nil && c.Command.FullName() != "" && c.Command.FullName() != c.App.Name {
				hint = "repermit " + c.Command.FullName() + " --help"
			}
			return usagef(hint, "%s", err)
		},
		ExitErrHandler: func(c *cli.Context, err error) {}, // run() prints errors and picks exit codes
		Commands: []*cli.Command{
			initCommand(),
			importCommand(),
			suppressCommand(),
			optoutCommand(),
			contactsCommand(),
			campaignCommand(),
			serveCommand(),
			segmentsCommand(),
			consentCommand(),
			reportCommand(),
			runCommand(),
			demoCommand(),
		},
	}
	setUsageErrors(app.Commands, app.OnUsageError)
	return app
}

// flagsFirst moves the flags of the command being run in front of its
// positional arguments, so that `contacts show EMAIL --json` and
// `segments create NAME --rule EXPR` (as the contract writes them) work:
// urfave/cli v2 stops reading flags at the first argument. Flag values are
// kept with their flags; everything after "--" stays as it is.
func flagsFirst(app *cli.App, args []string) []string {
	cmds, flags := app.Commands, app.Flags
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return args
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			if flagTakesValue(flags, a) {
				i++
			}
			continue
		}
		var cmd *cli.Command
		for _, c := range cmds {
			if c.HasName(a) {
				cmd = c
			}
		}
		if cmd == nil {
			return args // not a command: the CLI reports it
		}
		if len(cmd.Subcommands) > 0 {
			cmds, flags = cmd.Subcommands, cmd.Flags
			continue
		}
		var fl, pos []string
		rest := args[i+1:]
		for j := 0; j < len(rest); j++ {
			r := rest[j]
			if r == "--" {
				pos = append(pos, rest[j:]...)
				break
			}
			if strings.HasPrefix(r, "-") && r != "-" {
				fl = append(fl, r)
				if flagTakesValue(cmd.Flags, r) && j+1 < len(rest) {
					fl = append(fl, rest[j+1])
					j++
				}
				continue
			}
			pos = append(pos, r)
		}
		out := append([]string{}, args[:i+1]...)
		return append(append(out, fl...), pos...)
	}
	return args
}

// flagTakesValue reports whether arg (e.g. "--rule" or "-rule") names a
// flag of flags that takes a separate value.
func flagTakesValue(flags []cli.Flag, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}

// setUsageErrors gives every subcommand the app's usage-error handler, so
// that a wrong flag anywhere exits 2 with a hint.
func setUsageErrors(cmds []*cli.Command, h cli.OnUsageErrorFunc) {
	for _, c := range cmds {
		if c.OnUsageError == nil {
			c.OnUsageError = h
		}
		setUsageErrors(c.Subcommands, h)
	}
}

// printJSON writes v as one JSON object on stdout.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// jsonFlag is the --json flag of commands that print a summary.
func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print exactly one JSON object on stdout"}
}

// isTerminal reports whether f is a terminal (progress bars only there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

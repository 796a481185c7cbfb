package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func notYet(name string) *cli.Command {
	return &cli.Command{
		Name:   name,
		Usage:  "not built yet",
		Action: func(c *cli.Context) error { return errors.New(name + " is not built yet") },
	}
}

func optoutCommand() *cli.Command        { return notYet("optout") }
func consentExportCommand() *cli.Command { return notYet("export") }
func reportCommand() *cli.Command        { return notYet("report") }
func runCommand() *cli.Command           { return notYet("run") }

package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func consentExportCommand() *cli.Command {
	return &cli.Command{
		Name:   "export",
		Usage:  "not built yet",
		Action: func(c *cli.Context) error { return errors.New("export is not built yet") },
	}
}

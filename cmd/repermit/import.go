package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func importCommand() *cli.Command {
	return &cli.Command{
		Name:   "import",
		Usage:  "not built yet",
		Action: func(c *cli.Context) error { return errors.New("import is not built yet") },
	}
}

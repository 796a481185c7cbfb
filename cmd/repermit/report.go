package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:   "report",
		Usage:  "not built yet",
		Action: func(c *cli.Context) error { return errors.New("report is not built yet") },
	}
}

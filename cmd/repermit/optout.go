package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func optoutCommand() *cli.Command {
	return &cli.Command{
		Name:   "optout",
		Usage:  "not built yet",
		Action: func(c *cli.Context) error { return errors.New("optout is not built yet") },
	}
}

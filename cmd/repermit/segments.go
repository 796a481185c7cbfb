package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func segmentsCommand() *cli.Command {
	return &cli.Command{
		Name:   "segments",
		Usage:  "not built yet",
		Action: func(c *cli.Context) error { return errors.New("segments is not built yet") },
	}
}

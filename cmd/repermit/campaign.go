package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func campaignCommand() *cli.Command {
	return &cli.Command{
		Name:   "campaign",
		Usage:  "not built yet",
		Action: func(c *cli.Context) error { return errors.New("campaign is not built yet") },
	}
}

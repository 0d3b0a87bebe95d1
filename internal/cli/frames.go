package cli

func (c *command) frames(args []string) int { return 0 }

"""Local web explorer (`siliconsim explore`): a loopback-only page over the same library calls
the CLI makes. ``service`` computes answers; ``server`` serves the page and the JSON API."""

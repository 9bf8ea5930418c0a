"""Optional integrations with other frameworks, each an installed app of its own."""

"""Optional integrations with other frameworks: each imports the core, the core never them."""

"""Stand-in for `lightning` (see lightning/pytorch). Not the real package."""

"""Publication: per-site feedback packages, suppression and blinding."""

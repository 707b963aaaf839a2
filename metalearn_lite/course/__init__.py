"""Chapter helpers: friendly exercise self-checks (``checks``) and per-chapter checks (``checks_<chapter>``)."""

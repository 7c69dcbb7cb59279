"""`python -m aifinops.cli` runs the `aifinops` command."""

from .aifinops import main

raise SystemExit(main())

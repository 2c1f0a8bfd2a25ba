"""`python -m synd` is the same as the `synd` command (and works under torchrun)."""

from synd.cli import main

raise SystemExit(main())

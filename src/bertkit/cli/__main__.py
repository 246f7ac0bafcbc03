"""`python -m bertkit.cli <verb> ...` (what torchrun runs for data-parallel pretraining)."""
import sys

from bertkit.cli.main import main

sys.exit(main())

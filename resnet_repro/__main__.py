"""`python -m resnet_repro`: see `resnet_repro.cli`."""

from .cli import main

raise SystemExit(main())

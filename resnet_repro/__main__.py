"""`python -m resnet_repro`: see `resnet_repro.commands.cli`."""

import signal

# A Ctrl-C while torch and numpy load their C extensions can be swallowed by them or leave them half
# imported (an ImportError traceback later): hold it until the imports are done, then stop quietly.
_held: list[int] = []
_previous = signal.getsignal(signal.SIGINT)
if _previous is signal.default_int_handler:  # not where Ctrl-C is ignored (a background job)
    signal.signal(signal.SIGINT, lambda number, frame: _held.append(number))
try:
    from resnet_repro.commands.cli import EXIT_INTERRUPTED, main
finally:
    signal.signal(signal.SIGINT, _previous)
if _held:
    raise SystemExit(EXIT_INTERRUPTED)
raise SystemExit(main())

"""CLI subcommands: each module here defines ``register(subparsers)``.

A module's ``register`` adds one subcommand whose ``func`` attribute takes the parsed
arguments and returns an exit code. Heavy imports (torch, numba) belong inside the
command function so ``evtrack --help`` stays fast.
"""

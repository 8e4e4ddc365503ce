"""`python -m cnnkit` runs the command-line interface (torchrun needs a module)."""

from cnnkit.entry import main

main()

import sys

from server.memory import limit_arenas

limit_arenas()  # before any thread allocates (server/memory.py)

from server.cli import main  # noqa: E402

sys.exit(main())
